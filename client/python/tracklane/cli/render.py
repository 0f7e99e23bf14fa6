"""How client commands print: a table (or ``key: value`` lines) for people, JSON for scripts.

A command returns what it got from the server, or a :class:`Shown` pairing that value with the
table made for it; ``--output json`` always prints the value, never the table.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["Shown", "details", "jsonable", "rows", "when"]


@dataclasses.dataclass(frozen=True)
class Shown:
    """A result and its table form."""

    value: object
    table: str

    def render_table(self) -> str:
        return self.table


def when(ms: int | None) -> str:
    """Epoch millis as ``YYYY-MM-DD HH:MM:SS`` UTC; empty when unset."""
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def rows(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns under a header (the header alone when there are no rows)."""
    lines = [tuple(header), *(tuple(r) for r in body)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n" for line in lines
    )


def details(
    fields: Sequence[tuple[str, object]], sections: Mapping[str, Mapping[str, object]] | None = None
) -> str:
    """``name: value`` lines, aligned, then each section as ``title:`` and indented ``key = value``."""
    width = max((len(name) for name, _ in fields), default=0) + 1
    out = [f"{name + ':':<{width}} {value}".rstrip() for name, value in fields]
    for title, values in (sections or {}).items():
        out.append(f"{title}:")
        out.extend(f"  {k} = {v}" for k, v in sorted(values.items()))
    return "\n".join(out) + "\n"


def jsonable(value: Any) -> Any:
    """Entities (dataclasses), enums, mappings and sequences as plain JSON values."""
    if isinstance(value, Shown):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if hasattr(value, "metrics") and "latest_metrics" in out:
            out["metrics"] = jsonable(value.metrics)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return "NaN"  # JSON has no NaN; a string survives every parser
    return value
