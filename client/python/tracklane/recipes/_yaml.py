"""YAML that remembers where each key was written, so configuration errors can name the line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from tracklane.recipes.errors import RecipeConfigError

__all__ = ["Located", "Where", "load_yaml"]

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Where:
    """A file and a 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}"


@dataclass
class Located:
    """A parsed document and the place of every key and list item in it, by path."""

    value: Any
    places: dict[Path, Where]

    def where(self, path: Path) -> Where | None:
        """The place of ``path``, else of its nearest ancestor that was written."""
        for end in range(len(path), -1, -1):
            place = self.places.get(tuple(path[:end]))
            if place is not None:
                return place
        return None


def load_yaml(text: str, file: str) -> Located:
    """Parses one YAML document (safe types only); duplicate keys are errors.

    Raises:
        RecipeConfigError: a syntax error or a duplicate key, with its line.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(None, {})
        places: dict[Path, Where] = {(): Where(file, node.start_mark.line + 1)}
        _walk(node, (), file, places)
        return Located(loader.construct_document(node), places)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise RecipeConfigError(f"{file}, line {line}: invalid YAML: {exc.problem or exc}") from None
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: Path, file: str, places: dict[Path, Where]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise RecipeConfigError(
                    f"{file}, line {line}: duplicate key {'.'.join(map(str, (*path, key)))!r} "
                    f"(first at line {seen[key]})"
                )
            seen[key] = line
            places[(*path, key)] = Where(file, line)
            _walk(value_node, (*path, key), file, places)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            places[(*path, index)] = Where(file, item.start_mark.line + 1)
            _walk(item, (*path, index), file, places)
