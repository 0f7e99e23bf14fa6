"""Reading a recipe: ``recipe.yaml`` rendered by Jinja2 with a profile's values, merged, checked.

As in MLflow 2.x: the profile (``profiles/<name>.yaml``) is itself rendered first, its values are
substituted into ``recipe.yaml`` (``{{INGEST_CONFIG}}``, ``{{X|default(1)}}``), and its lower-case
top-level keys (``experiment``, ``model_registry``...) are added to the result; a key defined in
both files is an error. ``#`` starts a comment for Jinja2 too, so commented-out variables need no
value. Mappings, lists, booleans and null are substituted as JSON, which YAML reads back exactly.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from tracklane.recipes._yaml import Located, Where, load_yaml
from tracklane.recipes.errors import RecipeConfigError
from tracklane.recipes.schema import RecipeSchema

__all__ = ["RECIPE_FILE", "RecipeConfig", "find_recipe_root", "load_config"]

RECIPE_FILE = "recipe.yaml"
PROFILES_DIR = "profiles"


@dataclass(frozen=True)
class RecipeConfig:
    """A recipe's checked configuration under one profile.

    Attributes:
        root: The recipe folder (holds recipe.yaml, profiles/, steps/).
        profile: The profile's name, or None when run without one.
        schema: The typed configuration.
        raw: The rendered, merged configuration as plain data (what cache keys hash).
    """

    root: Path
    profile: str | None
    schema: RecipeSchema
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        """The recipe's name: its folder's name."""
        return self.root.name

    def step_section(self, step: str) -> Any:
        """The rendered ``steps.<step>`` section (None when absent)."""
        return (self.raw.get("steps") or {}).get(step)


def find_recipe_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest folder holding recipe.yaml, from ``start`` (default: here) upwards.

    Raises:
        RecipeConfigError: none found.
    """
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / RECIPE_FILE).is_file():
            return folder
    raise RecipeConfigError(f"no {RECIPE_FILE} in {here} or any folder above it")


def load_config(root: str | os.PathLike[str], profile: str | None) -> RecipeConfig:
    """Renders, merges and checks the recipe's configuration.

    Raises:
        RecipeConfigError: a missing file, a YAML or Jinja2 error, an unknown key or a bad value;
            the message names the file, the line and the key.
    """
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    folder = Path(root).resolve()
    recipe_path = folder / RECIPE_FILE
    if not recipe_path.is_file():
        raise RecipeConfigError(f"{recipe_path} not found")
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        line_comment_prefix="#",
        keep_trailing_newline=True,
        finalize=_as_yaml,
    )
    profile_doc = Located({}, {})
    profile_file = ""
    if profile:
        profile_file = f"{PROFILES_DIR}/{profile}.yaml"
        profile_path = folder / profile_file
        if not profile_path.is_file():
            known = sorted(p.stem for p in (folder / PROFILES_DIR).glob("*.yaml"))
            raise RecipeConfigError(f"profile {profile!r} not found: no {profile_file} (profiles: {known})")
        profile_doc = _render_and_load(env, profile_path.read_text("utf-8"), profile_file, {})
        if profile_doc.value is None:
            profile_doc = Located({}, {})
        if not isinstance(profile_doc.value, dict):
            raise RecipeConfigError(f"{profile_file}, line 1: a profile is a mapping of names to values")
    recipe_doc = _render_and_load(env, recipe_path.read_text("utf-8"), RECIPE_FILE, profile_doc.value)
    if not isinstance(recipe_doc.value, dict):
        raise RecipeConfigError(
            f"{RECIPE_FILE}, line 1: recipe.yaml is a mapping (recipe:, target_col:, steps:...)"
        )
    merged = dict(recipe_doc.value)
    places = dict(recipe_doc.places)
    for key, value in profile_doc.value.items():
        if key in merged:
            raise RecipeConfigError(
                f"{profile_doc.where((key,))}: {key!r} is already set in {recipe_doc.where((key,))}; a "
                "profile may only fill {{variables}} of recipe.yaml or add keys it does not set"
            )
        if key.isupper():  # a template variable; unused ones are allowed (commented-out uses)
            continue
        merged[key] = value
        places.update({p: w for p, w in profile_doc.places.items() if p[:1] == (key,)})
    origins = _variables_by_line(recipe_path.read_text("utf-8"), profile_doc)
    schema = _validate(merged, Located(merged, places), origins)
    return RecipeConfig(root=folder, profile=profile, schema=schema, raw=merged)


def _as_yaml(value: Any) -> Any:
    if isinstance(value, dict | list | tuple | bool) or value is None:
        return json.dumps(value)
    return value


def _render_and_load(env: Any, source: str, file: str, context: dict[str, Any]) -> Located:
    from jinja2 import TemplateSyntaxError, UndefinedError

    try:
        text = env.from_string(source).render(context)
    except TemplateSyntaxError as exc:
        raise RecipeConfigError(f"{file}, line {exc.lineno}: template error: {exc.message}") from None
    except UndefinedError as exc:
        name = _undefined_name(str(exc))
        line = _line_of(source, name)
        hint = " (set it in the profile, or give a default: {{NAME|default(...)}})"
        raise RecipeConfigError(f"{file}, line {line}: {exc.message}{hint}") from None
    return load_yaml(text, file)


def _undefined_name(message: str) -> str:
    match = re.search(r"'([^']+)' is undefined", message)
    return match.group(1) if match else ""


def _line_of(source: str, name: str) -> int:
    if name:
        pattern = re.compile(r"\{\{[^}]*\b" + re.escape(name) + r"\b")
        for number, line in enumerate(source.splitlines(), start=1):
            if pattern.search(line.split("#", 1)[0]):
                return number
    return 1


def _variables_by_line(source: str, profile: Located) -> dict[int, str]:
    """recipe.yaml line -> where the profile sets the variable substituted on it."""
    out = {}
    for number, line in enumerate(source.splitlines(), start=1):
        for name in re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)", line.split("#", 1)[0]):
            where = profile.places.get((name,))
            if where is not None:
                out[number] = f" (the value of {name}, {where})"
    return out


def _validate(merged: dict[str, Any], doc: Located, origins: dict[int, str]) -> RecipeSchema:
    import msgspec

    try:
        return msgspec.convert(merged, RecipeSchema, strict=False)
    except msgspec.ValidationError as exc:
        message = _describe(str(exc), doc)
        match = re.match(rf"{re.escape(RECIPE_FILE)}, line (\d+): ", message)
        if match and int(match.group(1)) in origins:
            message += origins[int(match.group(1))]
        raise RecipeConfigError(message) from None


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _describe(error: str, doc: Located) -> str:
    """msgspec's "<message> - at `$.steps.split`" as "recipe.yaml, line N: <key>: <message>"."""
    match = _AT.match(error)
    assert match is not None
    message, path = match.group("message"), match.group("path") or ""
    loc: tuple[str | int, ...] = tuple(
        m.group(1) if m.group(1) else int(m.group(2)) for m in _PART.finditer(path)
    )
    unknown = re.match(r"Object contains unknown field `([^`]+)`", message)
    missing = re.match(r"Object missing required field `([^`]+)`", message)
    field, _, rest = message.partition(": ")
    if unknown:
        known = _known_keys(loc)
        loc = (*loc, unknown.group(1))
        hint = f" (known keys: {', '.join(known)})" if known else ""
        return f"{_place(doc, loc)}unknown key {_key(loc)!r}{hint}"
    if missing:
        loc = (*loc, missing.group(1))
        return f"{_place(doc, loc)}{_key(loc)!r} is required"
    if rest and field in _known_keys(loc):  # a section's own check names the field it is about
        loc, message = (*loc, field), rest
    return f"{_place(doc, loc)}{_key(loc)}: {message}"


def _key(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _place(doc: Located, loc: tuple[str | int, ...]) -> str:
    where: Where | None = doc.where(loc)
    return f"{where}: " if where else f"{RECIPE_FILE}: "


def _known_keys(loc: tuple[str | int, ...]) -> list[str]:
    struct: Any = RecipeSchema
    for part in loc:
        if isinstance(part, int):
            continue
        hints = _hints(struct)
        if part not in hints:
            return []
        struct = _struct_of(hints[part])
        if struct is None:
            return []
    return list(struct.__struct_fields__)


def _hints(struct: Any) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(struct) if hasattr(struct, "__struct_fields__") else {}


def _struct_of(annotation: Any) -> Any:
    if hasattr(annotation, "__struct_fields__"):
        return annotation
    for arg in get_args(annotation):
        found = _struct_of(arg)
        if found is not None:
            return found
    return None
