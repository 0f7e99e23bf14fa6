"""The search filter and order-by languages: MLflow's grammar, parsed into a small AST (terms.py).

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
from collections.abc import Collection, Mapping, Sequence
from typing import Final

from tracklane.exceptions import InvalidArgument
from tracklane_server.store.query.scanner import INTEGER, NUMBER, QUOTES, WORD, Scanner, clip
from tracklane_server.store.query.terms import (
    ALL_ENTITIES,
    BARE_KEY,
    DATASET_KEYS,
    ENTITY_NAMES,
    ENTITY_ORDER,
    EXAMPLE_KEYS,
    EXPERIMENT_ATTRIBUTES,
    MODEL_VERSION_ATTRIBUTES,
    NULL_OPS,
    NUMERIC_OPS,
    REGISTERED_MODEL_ATTRIBUTES,
    RUN_ATTRIBUTES,
    STRING_OPS,
    SUMMARIES,
    SUMMARY_NAMES,
    TAGGED_ENTITIES,
    AttrAlias,
    AttrSpec,
    AttrType,
    Comparison,
    Entity,
    Op,
    OrderKey,
    Summary,
    Target,
    Value,
    render_filter,
    render_identifier,
    render_order_by,
    split_summary,
)
from tracklane_server.store.validation import FILTER_MAX, ORDER_BY_MAX

# The languages' whole interface: the parser here, the AST and rendering from terms.py.
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

_SYMBOL_OPS: Final[tuple[Op, ...]] = ("!=", "<=", ">=", "<", ">", "=")  # longest first
_WORD_OPS: Final[Mapping[str, Op]] = {"LIKE": "LIKE", "ILIKE": "ILIKE", "IN": "IN"}
_KEY_FOLLOWERS: Final = ("LIKE", "ILIKE", "IN", "NOT", "IS", "ASC", "DESC")
_ALL_OPS_TEXT: Final = ", ".join(NUMERIC_OPS + STRING_OPS[2:] + NULL_OPS)

_INT64: Final = range(-(2**63), 2**63)


class _Parser(Scanner):
    """Reads one filter or order-by item; every method consumes input or raises."""

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
        super().__init__(text, label=label, field=field, noun=noun)
        self.entities = [e for e in ENTITY_ORDER if e in entities]
        # Attribute names match case-insensitively; the AST carries the spelling of the mapping.
        self.attributes = {name.lower(): (name, spec) for name, spec in attributes.items()}
        if len(text) > FILTER_MAX:
            raise InvalidArgument(
                f"{label}: longer than {FILTER_MAX} characters ({len(text)}); split the search", field=field
            )
        nul = text.find("\x00")
        if nul >= 0:  # PostgreSQL text cannot hold NUL, so no stored value could match it
            self.fail(nul, "found '\\x00' (a NUL character), which no stored value can contain")

    # -- identifiers ----------------------------------------------------------------------------------

    def identifier(self) -> tuple[Target, bool]:
        """Reads ``entity.key`` or a bare attribute; also says whether the key was a bare word."""
        start = self.pos
        if self.peek() in QUOTES:
            name = self.quoted("quoted name")
            head, dot, rest = name.partition(".")
            entity = ENTITY_NAMES.get(head.lower()) if dot else None
            if entity is not None:
                key, summary = split_summary(entity, rest)
                return self.with_summary(self.resolve(entity, key, start, start), summary), False
            return self.resolve("attribute", name, start, start), False
        word = self.word()
        if not word:
            if self.peek() == "(":
                self.fail(start, "parentheses are not supported; join comparisons with AND")
            self.fail(start, f"expected a key such as {self._examples()}, found {self.found()}")
        self.pos += len(word)
        if self.peek() != ".":
            if word.lower() in ENTITY_NAMES and word.lower() not in self.attributes:
                self.fail(self.pos, f"expected '.' and a key after {word!r}, found {self.found()}")
            return self.resolve("attribute", word, start, start), True
        entity = ENTITY_NAMES.get(word.lower())
        if entity is None:
            self.fail(start, f"unknown entity {clip(word)!r}; expected {self._entity_list()}")
        self.pos += 1
        key_start = self.pos
        if self.peek() in QUOTES:
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
                quoted_summary = SUMMARY_NAMES[after]
            return self.with_summary(target, quoted_summary), False
        match = BARE_KEY.match(self.text, self.pos)
        if match is None:
            self.fail(key_start, f"expected a key after '{word}.', found {self.found()}")
        self.pos = match.end()
        key, summary = split_summary(entity, match.group())
        return self.with_summary(self.resolve(entity, key, start, key_start), summary), True

    @staticmethod
    def with_summary(target: Target, summary: Summary) -> Target:
        """A metric target reading a summary; the count compares as a whole number."""
        if not summary:
            return target
        return Target(
            target.entity,
            target.key,
            "integer" if summary == "count" else "number",
            nullable=True,
            summary=summary,
        )

    def resolve(self, entity: Entity, key: str, start: int, key_start: int) -> Target:
        if entity not in self.entities:
            self.fail(start, f"{entity}s cannot be used here; expected {self._entity_list()}")
        if not key:
            self.fail(key_start, f"the key after '{entity}s.' is empty")
        if entity == "dataset":
            if key.lower() not in DATASET_KEYS:
                self.fail(key_start, f"unknown dataset key {clip(key)!r}; expected name, digest or context")
            return Target("dataset", key.lower(), "string")
        if entity != "attribute":
            return Target(entity, key, "number" if entity == "metric" else "string", nullable=True)
        name, spec = self.attributes.get(key.lower(), (key, None))
        if isinstance(spec, AttrAlias):
            name, spec = self.attributes.get(spec.target.lower(), (spec.target, None))
        if not isinstance(spec, AttrType):
            self.fail(key_start, self._unknown_attribute(key))
        return Target("attribute", name, spec.kind, spec.choices, spec.nullable, spec.unit)

    def _examples(self) -> str:
        examples = [render_identifier(e, EXAMPLE_KEYS[e]) for e in self.entities if e != "attribute"]
        examples += [name for name, spec in self.attributes.values() if isinstance(spec, AttrType)][:1]
        return ", ".join(examples[:-1]) + " or " + examples[-1] if len(examples) > 1 else "".join(examples)

    def _entity_list(self) -> str:
        names = [e + "s" for e in self.entities]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]

    def _unknown_attribute(self, key: str) -> str:
        known = [name for name, spec in self.attributes.values() if isinstance(spec, AttrType)]
        message = f"unknown attribute {clip(key)!r}; expected one of: {', '.join(known)}"
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

    def operator(self, target: Target, bare_key: bool) -> Op:
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
        after = WORD.match(self.text, i)
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

    def value(self, target: Target, op: Op) -> Value:
        if op in NULL_OPS:
            return None
        if op in ("IN", "NOT IN"):
            return self.string_list(target, op)
        if target.kind != "string":
            return self.number(target)
        start = self.pos
        text = self.string(target)
        return self.choice(target, text, start) if op in ("=", "!=") else text

    def string(self, target: Target) -> str:
        if self.peek() not in ("'", '"'):
            snippet = self.snippet(self.pos)
            hint = f"; write '{snippet}'" if NUMBER.fullmatch(snippet) else ""
            self.fail(self.pos, f"{target.label} takes a quoted string, found {self.found()}{hint}")
        return self.quoted("string")

    def choice(self, target: Target, text: str, pos: int) -> str:
        if not target.choices:
            return text
        for choice in target.choices:
            if choice.upper() == text.upper():
                return choice
        self.fail(pos, f"{target.label} must be one of {', '.join(target.choices)}, found {clip(text)!r}")

    def string_list(self, target: Target, op: Op) -> tuple[str, ...]:
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

    def number(self, target: Target) -> int | float:
        start = self.pos
        match = NUMBER.match(self.text, start)
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
                quoted_number = len(snippet) > 2 and NUMBER.fullmatch(snippet[1:-1]) and snippet[0] in "'\""
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

    def _integer(self, target: Target, literal: str, start: int) -> int:
        # Digits go through int() so large ids and times keep every digit; 20 digits bound int64 and
        # keep int() clear of its 4,300-digit guard.
        if INTEGER.fullmatch(literal) and len(literal) <= 21:
            value = int(literal)
        else:
            number = float(literal)
            if not math.isfinite(number):
                self.fail(start, f"{target.label}: {clip(literal)} is out of range")
            if not number.is_integer():
                self.fail(start, f"{target.label} takes a whole number, found {clip(literal)!r}")
            value = int(number)
        if value not in _INT64:
            self.fail(start, f"{target.label}: {clip(literal)} is out of range")
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
