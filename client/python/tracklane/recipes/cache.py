"""The content-addressed cache of step outputs.

A step's key is a SHA-256 of what decides its outputs: its code (the files of steps/ it uses),
its rendered configuration, its upstream steps' keys and, for ingest steps, the input data's
bytes. Outputs live in ``<cache>/<step>/<key>/``; an entry counts only once its ``meta.json``
is written (it is built in a temporary folder and renamed into place), so a step killed midway
leaves nothing that looks complete. Nothing in a key or an entry names an absolute path: a
cache copied with its recipe to another machine still hits.

Default place: ``<recipe root>/.tracklane/cache``; ``TRACKLANE_RECIPES_CACHE`` moves it (the
recipe's name is appended, so recipes may share one).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CACHE_ENV", "Entry", "StepCache", "digest_json", "hash_files"]

CACHE_ENV = "TRACKLANE_RECIPES_CACHE"
META_FILE = "meta.json"
CARD_FILE = "card.html"
FAILED_DIR = "failed"
_KEEP = 4  # entries kept per step: a few configurations to switch between


def digest_json(value: Any) -> str:
    """SHA-256 of a canonical JSON form."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_files(paths: Iterator[tuple[str, Path]]) -> str:
    """SHA-256 over (name, bytes) of files, read in chunks."""
    digest = hashlib.sha256()
    for name, path in paths:
        digest.update(f"{name}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as src:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    """A complete cache entry."""

    step: str
    key: str
    path: Path
    meta: dict[str, Any]

    def file(self, name: str) -> Path:
        """A file of the entry's outputs."""
        return self.path / name


class StepCache:
    """Entries of one recipe's steps."""

    def __init__(self, recipe_root: Path) -> None:
        moved = os.environ.get(CACHE_ENV)
        self.root = Path(moved) / recipe_root.name if moved else recipe_root / ".tracklane" / "cache"

    def get(self, step: str, key: str) -> Entry | None:
        """The complete entry of ``step`` under ``key``, if any."""
        path = self.root / step / key
        try:
            meta = json.loads((path / META_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return Entry(step, key, path, meta)

    def last(self, step: str) -> Entry | None:
        """The entry ``step`` last completed (or was last found in), whatever the configuration."""
        try:
            key = (self.root / step / "last").read_text("utf-8").strip()
        except OSError:
            return None
        return self.get(step, key) if key else None

    def mark_last(self, step: str, key: str) -> None:
        """Records ``key`` as the step's latest entry (for inspect and get_artifact)."""
        folder = self.root / step
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / "last", key)

    def begin(self, step: str) -> Path:
        """A fresh temporary folder for a step's outputs."""
        tmp = self.root / step / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        return tmp

    def commit(self, step: str, key: str, tmp: Path, meta: dict[str, Any]) -> Entry:
        """Makes ``tmp`` the entry of ``key``: meta.json last, then an atomic rename."""
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str), "utf-8")
        target = self.root / step / key
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        self.mark_last(step, key)
        shutil.rmtree(self.root / step / FAILED_DIR, ignore_errors=True)
        self._prune(step)
        return Entry(step, key, target, meta)

    def fail(self, step: str, tmp: Path, card_html: str) -> Path:
        """Keeps the failure card of ``step`` (its last good entry stays as it was)."""
        shutil.rmtree(tmp, ignore_errors=True)
        folder = self.root / step / FAILED_DIR
        folder.mkdir(parents=True, exist_ok=True)
        card = folder / CARD_FILE
        card.write_text(card_html, "utf-8")
        return card

    def failure_card(self, step: str) -> Path | None:
        """The card of the step's last failure, if it failed after its last success."""
        card = self.root / step / FAILED_DIR / CARD_FILE
        return card if card.is_file() else None

    def clean(self, steps: list[str]) -> None:
        """Removes every entry of ``steps``."""
        for step in steps:
            shutil.rmtree(self.root / step, ignore_errors=True)

    def _prune(self, step: str) -> None:
        folder = self.root / step
        entries = sorted(
            (p for p in folder.iterdir() if (p / META_FILE).is_file()),
            key=lambda p: (p / META_FILE).stat().st_mtime,
            reverse=True,
        )
        for old in entries[_KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
        for tmp in folder.glob(".tmp-*"):  # left by a killed process
            if time.time() - tmp.stat().st_mtime > 24 * 3600:
                shutil.rmtree(tmp, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)
