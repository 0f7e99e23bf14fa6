"""The search filter and order-by languages: MLflow's grammar, parsed into a small AST.

No SQL here: the store turns :class:`Comparison` and :class:`OrderKey` into SQLAlchemy expressions with
bound parameters. Hand-written and single-pass, so parsing is linear in the input and any string either
parses or raises :class:`~tracklane.exceptions.InvalidArgument`; nothing else escapes.

Filter grammar (keywords and entity names are case-insensitive; whitespace is free between tokens)::

    filter     := [ comparison { AND comparison } ]
    comparison := identifier ( op value | (IN | NOT IN) list | IS [NOT] NULL )
    identifier := entity "." key [ "." summary ] | attribute | quoted
    entity     := metric(s) | param(s) | parameter(s) | tag(s) | attribute(s) | attr | run | dataset(s)
    key        := [A-Za-z0-9_] [A-Za-z0-9_./-]* | quoted
    summary    := min | max | first | count         metrics only
    quoted     := `...` | "..." | '...'          a doubled quote character inside stands for itself
    op         := = | != | < | <= | > | >= | LIKE | ILIKE
    value      := number | string
    number     := [+-] ( digits [. digits] | . digits ) [ e [+-] digits ] | [+-] inf | [+-] infinity
    string     := '...' | "..."
    list       := "(" string { "," string } ")"

Decisions:
    * A bare name (``status = 'FINISHED'``) is an attribute, like MLflow. A quoted name without a prefix
      whose text starts with an entity and a dot (`` `tags.my tag` ``) is split there, as MLflow's
      order-by does; otherwise it is an attribute name (`` `run name` ``).
    * Strings escape their quote by doubling it (``'it''s'``), as SQL does; a backslash is an ordinary
      character, so LIKE patterns and Windows paths reach the store unchanged.
    * ``inf``/``infinity`` (signed, any case) are numbers: metrics may hold ±inf. ``NaN`` is refused
      because no comparison with it can match.
    * ``IS NULL`` / ``IS NOT NULL``: for metrics, params and tags they mean "the run has no / has a value
      for this key" (a plain ``!=`` never matches a run without the key, as in MLflow); for attributes
      only where :attr:`AttrType.nullable` (a run's ``end_time``).
    * A filter (and each order-by item) is at most ``FILTER_MAX`` characters and holds no NUL (no stored
      value can contain one); at most ``ORDER_BY_MAX`` order-by items. Both limits live in validation.py.
    * ``metrics.loss.min`` (also ``.max``, ``.first``, ``.count``) compares the metric's summary: the
      smallest and largest value, the value at the lowest step, the number of points; plain
      ``metrics.loss`` is the latest value. A bare key ending in one of those words is read as the
      summary, so a metric literally called ``loss.min`` is written quoted: ``metrics.`loss.min```
      (its summaries: ``metrics.`loss.min`.max``). ``.count`` compares as a whole number.
    * Errors give a 1-based column, counted in characters from the start of the text (a newline counts
      as one character), and say what was expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, NoReturn, TypeAlias

from tracklane.exceptions import InvalidArgument
from tracklane_server.store.validation import FILTER_MAX, ORDER_BY_MAX

__all__ = [
    "ALL_ENTITIES",
    "EXPERIMENT_ATTRIBUTES",
    "MODEL_VERSION_ATTRIBUTES",
    "REGISTERED_MODEL_ATTRIBUTES",
    "RUN_ATTRIBUTES",
    "SUMMARIES",
    "TAGGED_ENTITIES",
    "AttrAlias",
    "AttrSpec",
    "AttrType",
    "Comparison",
    "Entity",
    "Op",
    "OrderKey",
    "Summary",
    "Value",
    "parse_filter",
    "parse_order_by",
    "render_filter",
    "render_identifier",
    "render_order_by",
]

Entity: TypeAlias = Literal["metric", "param", "tag", "attribute", "dataset"]
Op: TypeAlias = Literal[
    "=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"
]
#: A metric's summary a comparison reads; "" is its latest value.
Summary: TypeAlias = Literal["", "min", "max", "first", "count"]
SUMMARIES: Final[tuple[Summary, ...]] = ("min", "max", "first", "count")
_SUMMARY_NAMES: Final[Mapping[str, Summary]] = {name: name for name in SUMMARIES}

# float for metrics and "number" attributes, int for "integer" attributes, str for string operators,
# a tuple for IN / NOT IN, None for IS [NOT] NULL.
Value: TypeAlias = int | float | str | tuple[str, ...] | None


@dataclass(frozen=True)
class Comparison:
    """One ``<entity>.<key> <op> <value>`` term; a filter is the AND of a list of them."""

    entity: Entity
    key: str  # canonical for attributes (aliases resolved) and datasets; verbatim otherwise
    op: Op
    value: Value
    summary: Summary = ""  # metrics: which summary of the key ("" = the latest value)


@dataclass(frozen=True)
class OrderKey:
    """One order-by item."""

    entity: Entity
    key: str
    ascending: bool = True
    summary: Summary = ""  # as in Comparison


@dataclass(frozen=True)
class AttrType:
    """How a searchable attribute compares.

    Attributes:
        kind: ``"string"`` takes =, !=, LIKE, ILIKE, IN, NOT IN with quoted strings; ``"number"`` takes
            =, !=, <, <=, >, >= with a float; ``"integer"`` the same with a whole number (an int).
        choices: If set, the only values = / != / IN accept (matched case-insensitively, returned as
            spelled here); LIKE patterns are not checked.
        nullable: Whether IS NULL / IS NOT NULL are allowed.
        unit: Said in error messages, e.g. "milliseconds since the epoch".
    """

    kind: Literal["string", "number", "integer"] = "string"
    choices: tuple[str, ...] = ()
    nullable: bool = False
    unit: str = ""


@dataclass(frozen=True)
class AttrAlias:
    """Another spelling of an attribute (e.g. MLflow's ``created`` for ``start_time``)."""

    target: str


AttrSpec: TypeAlias = AttrType | AttrAlias

_STRING: Final = AttrType()
_MILLIS: Final = AttrType("integer", unit="milliseconds since the epoch")

RUN_ATTRIBUTES: Final[Mapping[str, AttrSpec]] = MappingProxyType(
    {
        "run_id": _STRING,
        "run_name": _STRING,
        "status": AttrType(choices=("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")),
        "start_time": _MILLIS,
        "end_time": AttrType("integer", nullable=True, unit=_MILLIS.unit),
        "user_id": _STRING,
        "artifact_uri": _STRING,
        "lifecycle_stage": AttrType(choices=("active", "deleted")),
        "parent_run_id": AttrType(nullable=True),  # NULL for a top-level run
        "description": _STRING,
        # MLflow's spellings.
        "created": AttrAlias("start_time"),
        "run name": AttrAlias("run_name"),
    }
)
EXPERIMENT_ATTRIBUTES: Final[Mapping[str, AttrSpec]] = MappingProxyType(
    {
        "experiment_id": _STRING,
        "name": _STRING,
        "creation_time": _MILLIS,
        "last_update_time": _MILLIS,
        "create_time": AttrAlias("creation_time"),  # the proto's names
        "update_time": AttrAlias("last_update_time"),
    }
)
REGISTERED_MODEL_ATTRIBUTES: Final[Mapping[str, AttrSpec]] = MappingProxyType(
    {
        "name": _STRING,
        "create_time": _MILLIS,
        "update_time": _MILLIS,
        # MLflow's spellings.
        "creation_timestamp": AttrAlias("create_time"),
        "timestamp": AttrAlias("create_time"),
        "last_updated_timestamp": AttrAlias("update_time"),
    }
)
MODEL_VERSION_ATTRIBUTES: Final[Mapping[str, AttrSpec]] = MappingProxyType(
    {
        "name": _STRING,
        "version": AttrType("integer"),
        "run_id": _STRING,
        "source": _STRING,
        "create_time": _MILLIS,
        "update_time": _MILLIS,
        # MLflow's spellings.
        "version_number": AttrAlias("version"),
        "source_path": AttrAlias("source"),
        "creation_timestamp": AttrAlias("create_time"),
        "last_updated_timestamp": AttrAlias("update_time"),
    }
)

_ENTITIES: Final[tuple[Entity, ...]] = ("metric", "param", "tag", "attribute", "dataset")  # message order
ALL_ENTITIES: Final[frozenset[Entity]] = frozenset(_ENTITIES)
TAGGED_ENTITIES: Final[frozenset[Entity]] = frozenset({"tag", "attribute"})  # experiments, registry

_ENTITY_SPELLINGS: Final[tuple[tuple[Entity, tuple[str, ...]], ...]] = (
    ("metric", ("metric", "metrics")),
    ("param", ("param", "params", "parameter", "parameters")),
    ("tag", ("tag", "tags")),
    ("attribute", ("attribute", "attributes", "attr", "run")),
    ("dataset", ("dataset", "datasets")),
)
_ENTITY_NAMES: Final[Mapping[str, Entity]] = {name: e for e, names in _ENTITY_SPELLINGS for name in names}
_EXAMPLE_KEYS: Final[Mapping[Entity, str]] = {
    "metric": "acc",
    "param": "lr",
    "tag": "team",
    "dataset": "name",
}
_DATASET_KEYS: Final = ("name", "digest", "context")

_NUMERIC_OPS: Final[tuple[Op, ...]] = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS: Final[tuple[Op, ...]] = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NULL_OPS: Final[tuple[Op, ...]] = ("IS NULL", "IS NOT NULL")
_SYMBOL_OPS: Final[tuple[Op, ...]] = ("!=", "<=", ">=", "<", ">", "=")  # longest first
_WORD_OPS: Final[Mapping[str, Op]] = {"LIKE": "LIKE", "ILIKE": "ILIKE", "IN": "IN"}
_KEY_FOLLOWERS: Final = ("LIKE", "ILIKE", "IN", "NOT", "IS", "ASC", "DESC")
_ALL_OPS_TEXT: Final = ", ".join(_NUMERIC_OPS + _STRING_OPS[2:] + _NULL_OPS)

# ASCII only: str patterns' \d and \w would accept other scripts' digits, which float() then parses.
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_SNIPPET: Final = re.compile(r"[A-Za-z0-9_.+-]+|[=!<>]+")
_QUOTES: Final = ("`", '"', "'")
_INT64: Final = range(-(2**63), 2**63)


def _clip(text: str) -> str:
    """User text shortened for a message: gRPC carries messages in headers, which have size limits."""
    return text if len(text) <= 40 else text[:40] + "..."


@dataclass(frozen=True)
class _Target:
    """What an identifier resolved to, with the rules for comparing it."""

    entity: Entity
    key: str
    kind: Literal["string", "number", "integer"]
    choices: tuple[str, ...] = ()
    nullable: bool = False
    unit: str = ""
    summary: Summary = ""

    @property
    def label(self) -> str:
        return render_identifier(self.entity, _clip(self.key), self.summary)

    @property
    def ops(self) -> tuple[Op, ...]:
        ops = _STRING_OPS if self.kind == "string" else _NUMERIC_OPS
        return ops + _NULL_OPS if self.nullable else ops


class _Parser:
    """Cursor over one filter or order-by item; every method consumes input or raises."""

    def __init__(
        self,
        text: str,
        *,
        label: str,
        field: str,
        noun: str,
        attributes: Mapping[str, AttrSpec],
        entities: Collection[Entity],
    ) -> None:
        self.text = text
        self.pos = 0
        self.label = label
        self.field = field
        self.noun = noun
        self.entities = [e for e in _ENTITIES if e in entities]
        # Attribute names match case-insensitively; the AST carries the spelling of the mapping.
        self.attributes = {name.lower(): (name, spec) for name, spec in attributes.items()}
        if len(text) > FILTER_MAX:
            raise InvalidArgument(
                f"{label}: longer than {FILTER_MAX} characters ({len(text)}); split the search", field=field
            )
        nul = text.find("\x00")
        if nul >= 0:  # PostgreSQL text cannot hold NUL, so no stored value could match it
            self.fail(nul, "found '\\x00' (a NUL character), which no stored value can contain")

    # -- scanning -------------------------------------------------------------------------------------

    def fail(self, pos: int, message: str) -> NoReturn:
        raise InvalidArgument(f"{self.label}: at column {pos + 1}: {message}", field=self.field)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def word(self) -> str:
        """The ASCII word at the cursor ('' if none), not consumed."""
        match = _WORD.match(self.text, self.pos)
        return match.group() if match else ""

    def snippet(self, pos: int) -> str:
        """The token-ish text at ``pos`` ('' at the end), shortened for an error message."""
        if pos >= len(self.text):
            return ""
        match = _SNIPPET.match(self.text, pos)
        snippet = match.group() if match else self.text[pos]
        if snippet in _QUOTES:
            closing = self.text.find(snippet, pos + 1, pos + 40)
            snippet = self.text[pos : closing + 1] if closing > 0 else snippet
        return _clip(snippet)

    def found(self, pos: int | None = None) -> str:
        """Describes the input at ``pos`` (default: the cursor) for an error message."""
        snippet = self.snippet(self.pos if pos is None else pos)
        return repr(snippet) if snippet else f"the end of the {self.noun}"

    def quoted(self, what: str) -> str:
        """Reads a quoted token at the cursor; a doubled quote character stands for itself."""
        quote, start = self.text[self.pos], self.pos
        parts: list[str] = []
        i = start + 1
        while True:
            j = self.text.find(quote, i)
            if j < 0:
                self.fail(start, f"unterminated {what}: add the closing {quote}")
            parts.append(self.text[i:j])
            if self.text.startswith(quote, j + 1):
                parts.append(quote)
                i = j + 2
                continue
            self.pos = j + 1
            return "".join(parts)

    # -- identifiers ----------------------------------------------------------------------------------

    def identifier(self) -> tuple[_Target, bool]:
        """Reads ``entity.key`` or a bare attribute; also says whether the key was a bare word."""
        start = self.pos
        if self.peek() in _QUOTES:
            name = self.quoted("quoted name")
            head, dot, rest = name.partition(".")
            entity = _ENTITY_NAMES.get(head.lower()) if dot else None
            if entity is not None:
                key, summary = _split_summary(entity, rest)
                return self.with_summary(self.resolve(entity, key, start, start), summary), False
            return self.resolve("attribute", name, start, start), False
        word = self.word()
        if not word:
            if self.peek() == "(":
                self.fail(start, "parentheses are not supported; join comparisons with AND")
            self.fail(start, f"expected a key such as {self._examples()}, found {self.found()}")
        self.pos += len(word)
        if self.peek() != ".":
            if word.lower() in _ENTITY_NAMES and word.lower() not in self.attributes:
                self.fail(self.pos, f"expected '.' and a key after {word!r}, found {self.found()}")
            return self.resolve("attribute", word, start, start), True
        entity = _ENTITY_NAMES.get(word.lower())
        if entity is None:
            self.fail(start, f"unknown entity {_clip(word)!r}; expected {self._entity_list()}")
        self.pos += 1
        key_start = self.pos
        if self.peek() in _QUOTES:
            target = self.resolve(entity, self.quoted("quoted key"), start, key_start)
            quoted_summary: Summary = ""
            if entity == "metric" and self.peek() == ".":  # metrics.`my key`.max
                after = self.word_at(self.pos + 1).lower()
                if after not in SUMMARIES:
                    self.fail(
                        self.pos + 1,
                        f"expected {', '.join(SUMMARIES)} after '.', found {self.found(self.pos + 1)}",
                    )
                self.pos += 1 + len(after)
                quoted_summary = _SUMMARY_NAMES[after]
            return self.with_summary(target, quoted_summary), False
        match = _BARE_KEY.match(self.text, self.pos)
        if match is None:
            self.fail(key_start, f"expected a key after '{word}.', found {self.found()}")
        self.pos = match.end()
        key, summary = _split_summary(entity, match.group())
        return self.with_summary(self.resolve(entity, key, start, key_start), summary), True

    def word_at(self, pos: int) -> str:
        match = _WORD.match(self.text, pos)
        return match.group() if match else ""

    @staticmethod
    def with_summary(target: _Target, summary: Summary) -> _Target:
        """A metric target reading a summary; the count compares as a whole number."""
        if not summary:
            return target
        return _Target(
            target.entity,
            target.key,
            "integer" if summary == "count" else "number",
            nullable=True,
            summary=summary,
        )

    def resolve(self, entity: Entity, key: str, start: int, key_start: int) -> _Target:
        if entity not in self.entities:
            self.fail(start, f"{entity}s cannot be used here; expected {self._entity_list()}")
        if not key:
            self.fail(key_start, f"the key after '{entity}s.' is empty")
        if entity == "dataset":
            if key.lower() not in _DATASET_KEYS:
                self.fail(key_start, f"unknown dataset key {_clip(key)!r}; expected name, digest or context")
            return _Target("dataset", key.lower(), "string")
        if entity != "attribute":
            return _Target(entity, key, "number" if entity == "metric" else "string", nullable=True)
        name, spec = self.attributes.get(key.lower(), (key, None))
        if isinstance(spec, AttrAlias):
            name, spec = self.attributes.get(spec.target.lower(), (spec.target, None))
        if not isinstance(spec, AttrType):
            self.fail(key_start, self._unknown_attribute(key))
        return _Target("attribute", name, spec.kind, spec.choices, spec.nullable, spec.unit)

    def _examples(self) -> str:
        examples = [render_identifier(e, _EXAMPLE_KEYS[e]) for e in self.entities if e != "attribute"]
        examples += [name for name, spec in self.attributes.values() if isinstance(spec, AttrType)][:1]
        return ", ".join(examples[:-1]) + " or " + examples[-1] if len(examples) > 1 else "".join(examples)

    def _entity_list(self) -> str:
        names = [e + "s" for e in self.entities]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]

    def _unknown_attribute(self, key: str) -> str:
        known = [name for name, spec in self.attributes.values() if isinstance(spec, AttrType)]
        message = f"unknown attribute {_clip(key)!r}; expected one of: {', '.join(known)}"
        others = [render_identifier(e, key) for e in self.entities if e in ("metric", "param", "tag")]
        if not others or len(key) > 20:  # long names would bloat the message more than they help
            return message
        return f"{message} (or prefix it: {', '.join(others)})"

    # -- comparisons ----------------------------------------------------------------------------------

    def comparison(self) -> Comparison:
        target, bare = self.identifier()
        self.skip_space()
        op = self.operator(target, bare)
        self.skip_space()
        return Comparison(target.entity, target.key, op, self.value(target, op), target.summary)

    def operator(self, target: _Target, bare_key: bool) -> Op:
        start = self.pos
        op = self._read_operator()
        if op is None:
            hint = self.key_hint(bare_key)
            self.fail(start, f"expected a comparison operator ({_ALL_OPS_TEXT}), found {self.found()}{hint}")
        if op not in target.ops:
            self.fail(start, f"{target.label} does not take {op}; use {', '.join(target.ops)}")
        return op

    def key_hint(self, bare_key: bool) -> str:
        """Suggests backquotes when what follows a bare key looks like more of it (``my metric > 1``)."""
        if not bare_key or self.at_end():
            return ""
        hint = "; put keys with spaces or other special characters in backquotes, e.g. tags.`my key`"
        if not self.text[self.pos - 1].isspace():  # `metrics.größe`, `tags.a:b`
            return hint
        word = self.word().upper()
        if not word or word.startswith(("ASC", "DESC")):
            return ""
        i = self.pos + len(word)
        while i < len(self.text) and self.text[i].isspace():
            i += 1
        after = _WORD.match(self.text, i)
        if (
            i == len(self.text)
            or self.text[i] in "=!<>"
            or (after and after.group().upper() in _KEY_FOLLOWERS)
        ):
            return hint
        return ""

    def _read_operator(self) -> Op | None:
        for wrong, right in (("==", "="), ("<>", "!=")):
            if self.text.startswith(wrong, self.pos):
                self.fail(self.pos, f"{wrong!r} is not an operator; use {right!r}")
        for symbol in _SYMBOL_OPS:
            if self.text.startswith(symbol, self.pos):
                self.pos += len(symbol)
                return symbol
        word = self.word().upper()
        if word in _WORD_OPS:
            self.pos += len(word)
            return _WORD_OPS[word]
        if word == "NOT":
            self.pos += 3
            self.skip_space()
            if self.word().upper() != "IN":
                self.fail(self.pos, f"expected IN after NOT, found {self.found()}")
            self.pos += 2
            return "NOT IN"
        if word == "IS":
            self.pos += 2
            self.skip_space()
            negated = self.word().upper() == "NOT"
            if negated:
                self.pos += 3
                self.skip_space()
            if self.word().upper() != "NULL":
                self.fail(
                    self.pos, f"expected NULL after {'IS NOT' if negated else 'IS'}, found {self.found()}"
                )
            self.pos += 4
            return "IS NOT NULL" if negated else "IS NULL"
        return None

    def value(self, target: _Target, op: Op) -> Value:
        if op in _NULL_OPS:
            return None
        if op in ("IN", "NOT IN"):
            return self.string_list(target, op)
        if target.kind != "string":
            return self.number(target)
        start = self.pos
        text = self.string(target)
        return self.choice(target, text, start) if op in ("=", "!=") else text

    def string(self, target: _Target) -> str:
        if self.peek() not in ("'", '"'):
            snippet = self.snippet(self.pos)
            hint = f"; write '{snippet}'" if _NUMBER.fullmatch(snippet) else ""
            self.fail(self.pos, f"{target.label} takes a quoted string, found {self.found()}{hint}")
        return self.quoted("string")

    def choice(self, target: _Target, text: str, pos: int) -> str:
        if not target.choices:
            return text
        for choice in target.choices:
            if choice.upper() == text.upper():
                return choice
        self.fail(pos, f"{target.label} must be one of {', '.join(target.choices)}, found {_clip(text)!r}")

    def string_list(self, target: _Target, op: Op) -> tuple[str, ...]:
        if self.peek() != "(":
            self.fail(self.pos, f"{op} takes a list in parentheses, e.g. ('a', 'b'), found {self.found()}")
        self.pos += 1
        items: list[str] = []
        while True:
            self.skip_space()
            if self.peek() == ")" and not items:
                self.fail(self.pos, f"the {op} list is empty; give at least one quoted string")
            start = self.pos
            items.append(self.choice(target, self.string(target), start))
            self.skip_space()
            if self.peek() == ")":
                self.pos += 1
                return tuple(items)
            if self.peek() != ",":
                self.fail(self.pos, f"expected ',' or ')' in the {op} list, found {self.found()}")
            self.pos += 1

    def number(self, target: _Target) -> int | float:
        start = self.pos
        match = _NUMBER.match(self.text, start)
        if match is not None:
            end = match.end()
        else:
            sign = 1 if self.peek() in ("+", "-") else 0
            self.pos += sign
            word = self.word().lower()
            self.pos = start
            if word == "nan":
                self.fail(
                    start, f"{target.label} cannot be compared with NaN: NaN equals nothing, not even NaN"
                )
            if word not in ("inf", "infinity"):
                unit = f" ({target.unit})" if target.unit else ""
                snippet = self.snippet(start)
                quoted_number = len(snippet) > 2 and _NUMBER.fullmatch(snippet[1:-1]) and snippet[0] in "'\""
                hint = f"; write {snippet[1:-1]} without quotes" if quoted_number else ""
                self.fail(start, f"{target.label} takes a number{unit}, found {self.found()}{hint}")
            end = start + sign + len(word)
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "_."):
            self.fail(start, f"invalid number {self.found(start)}")
        literal = self.text[start:end]
        self.pos = end
        if target.kind != "integer":
            return float(literal)
        return self._integer(target, literal, start)

    def _integer(self, target: _Target, literal: str, start: int) -> int:
        # Digits go through int() so large ids and times keep every digit; 20 digits bound int64 and
        # keep int() clear of its 4,300-digit guard.
        if _INTEGER.fullmatch(literal) and len(literal) <= 21:
            value = int(literal)
        else:
            number = float(literal)
            if not math.isfinite(number):
                self.fail(start, f"{target.label}: {_clip(literal)} is out of range")
            if not number.is_integer():
                self.fail(start, f"{target.label} takes a whole number, found {_clip(literal)!r}")
            value = int(number)
        if value not in _INT64:
            self.fail(start, f"{target.label}: {_clip(literal)} is out of range")
        return value


def parse_filter(
    text: str,
    *,
    attributes: Mapping[str, AttrSpec] = RUN_ATTRIBUTES,
    entities: Collection[Entity] = ALL_ENTITIES,
) -> list[Comparison]:
    """Parses a search filter such as ``metrics.acc > 0.9 and params.model = 'rf'``.

    Args:
        text: The filter; empty or blank means no condition.
        attributes: The attributes this search knows (a bare name is an attribute); runs by default.
        entities: The entities this search allows, e.g. :data:`TAGGED_ENTITIES` for experiments.

    Returns:
        The comparisons, to be ANDed, in the order written.

    Raises:
        InvalidArgument: ``field="filter"``; the message gives the column and what was expected.
    """
    parser = _Parser(
        text, label="filter", field="filter", noun="filter", attributes=attributes, entities=entities
    )
    parser.skip_space()
    comparisons: list[Comparison] = []
    while not parser.at_end():
        comparisons.append(parser.comparison())
        parser.skip_space()
        if parser.at_end():
            break
        word = parser.word().upper()
        if word == "OR":
            parser.fail(parser.pos, "OR is not supported; join comparisons with AND, or run one search each")
        if word != "AND":
            parser.fail(parser.pos, f"expected AND or the end of the filter, found {parser.found()}")
        parser.pos += 3
        parser.skip_space()
        if parser.at_end():
            parser.fail(parser.pos, "expected a comparison after AND, found the end of the filter")
    return comparisons


def parse_order_by(
    items: Sequence[str],
    *,
    attributes: Mapping[str, AttrSpec] = RUN_ATTRIBUTES,
    entities: Collection[Entity] = ALL_ENTITIES,
) -> list[OrderKey]:
    """Parses order-by items such as ``metrics.acc DESC``, ``params.lr`` or ``start_time ASC``.

    Args:
        items: One key each, optionally followed by ASC (the default) or DESC, any case.
        attributes: As for :func:`parse_filter`.
        entities: As for :func:`parse_filter`; datasets are never orderable.

    Returns:
        One :class:`OrderKey` per item, in order.

    Raises:
        InvalidArgument: ``field="order_by"``; the message starts with ``order_by[<index>]``.
    """
    if len(items) > ORDER_BY_MAX:
        raise InvalidArgument(f"order_by: at most {ORDER_BY_MAX} items, got {len(items)}", field="order_by")
    orderable = [e for e in entities if e != "dataset"]
    keys: list[OrderKey] = []
    for index, item in enumerate(items):
        label = f"order_by[{index}]"
        parser = _Parser(
            item, label=label, field="order_by", noun="item", attributes=attributes, entities=orderable
        )
        parser.skip_space()
        if parser.at_end():
            raise InvalidArgument(
                f"{label}: is empty; expected a key such as metrics.acc, then ASC or DESC", field="order_by"
            )
        target, bare = parser.identifier()
        parser.skip_space()
        direction = parser.word().upper()
        if direction in ("ASC", "DESC"):
            parser.pos += len(direction)
            parser.skip_space()
            if not parser.at_end():
                parser.fail(
                    parser.pos, f"expected the end of the item after {direction}, found {parser.found()}"
                )
        elif not parser.at_end():
            hint = parser.key_hint(bare)
            parser.fail(
                parser.pos, f"expected ASC, DESC or the end of the item, found {parser.found()}{hint}"
            )
        keys.append(
            OrderKey(target.entity, target.key, ascending=direction != "DESC", summary=target.summary)
        )
    return keys


def _split_summary(entity: Entity, key: str) -> tuple[str, Summary]:
    """A bare metric key ``loss.min`` is the summary ``min`` of ``loss``."""
    head, dot, tail = key.rpartition(".")
    summary = _SUMMARY_NAMES.get(tail.lower()) if entity == "metric" and dot and head else None
    return (head, summary) if summary else (key, "")


def render_identifier(entity: Entity, key: str, summary: Summary = "") -> str:
    """``entity.key[.summary]`` as the parser reads it back, backquoting keys that need it."""
    if not _BARE_KEY.fullmatch(key) or _split_summary(entity, key)[1]:
        key = "`" + key.replace("`", "``") + "`"
    return f"{entity}s.{key}" + (f".{summary}" if summary else "")


def _render_value(value: Value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, tuple):
        return "(" + ", ".join(_render_value(item) for item in value) + ")"
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("NaN cannot be written in a filter")
    return repr(value)  # floats: shortest exact form, 'inf' and '-inf' included


def render_filter(comparisons: Sequence[Comparison]) -> str:
    """The filter text :func:`parse_filter` turns back into ``comparisons``."""
    terms = []
    for c in comparisons:
        value = "" if c.value is None else " " + _render_value(c.value)
        terms.append(f"{render_identifier(c.entity, c.key, c.summary)} {c.op}{value}")
    return " AND ".join(terms)


def render_order_by(keys: Sequence[OrderKey]) -> list[str]:
    """The order-by items :func:`parse_order_by` turns back into ``keys``."""
    return [
        f"{render_identifier(k.entity, k.key, k.summary)} {'ASC' if k.ascending else 'DESC'}" for k in keys
    ]
