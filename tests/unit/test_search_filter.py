"""The filter and order-by parser: grammar, AST, every error's position, and properties under fuzzing."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracklane.exceptions import InvalidArgument
from tracklane_server.store.query.filter import (
    ALL_ENTITIES,
    EXPERIMENT_ATTRIBUTES,
    MODEL_VERSION_ATTRIBUTES,
    REGISTERED_MODEL_ATTRIBUTES,
    RUN_ATTRIBUTES,
    SUMMARIES,
    TAGGED_ENTITIES,
    AttrAlias,
    AttrType,
    Comparison,
    Entity,
    Op,
    OrderKey,
    Summary,
    Value,
    parse_filter,
    parse_order_by,
    render_filter,
    render_identifier,
    render_order_by,
)

T = TypeVar("T")


def one(text: str, **kwargs: object) -> Comparison:
    comparisons = parse_filter(text, **kwargs)  # type: ignore[arg-type]
    assert len(comparisons) == 1
    return comparisons[0]


def filter_error(text: str, column: int, *fragments: str, **kwargs: object) -> str:
    """Parses ``text`` expecting an error at ``column`` whose message contains each fragment."""
    with pytest.raises(InvalidArgument) as info:
        parse_filter(text, **kwargs)  # type: ignore[arg-type]
    err = info.value
    assert err.field == "filter"
    assert err.message.startswith(f"filter: at column {column}: "), err.message
    for fragment in fragments:
        assert fragment in err.message, err.message
    return err.message


# -- the basics -----------------------------------------------------------------------------------------


def test_issue_example() -> None:
    text = (
        "metrics.acc > 0.9 and params.model = 'rf' and tags.team LIKE 'vision%' "
        "and attributes.status = 'FINISHED'"
    )
    assert parse_filter(text) == [
        Comparison("metric", "acc", ">", 0.9),
        Comparison("param", "model", "=", "rf"),
        Comparison("tag", "team", "LIKE", "vision%"),
        Comparison("attribute", "status", "=", "FINISHED"),
    ]


@pytest.mark.parametrize("text", ["", " ", "\t\n  \r"])
def test_empty_filter_is_no_condition(text: str) -> None:
    assert parse_filter(text) == []


def test_and_is_case_insensitive_and_whitespace_is_free() -> None:
    expected = [Comparison("metric", "a", ">=", 1.0), Comparison("param", "b", "!=", "x")]
    for text in (
        "metrics.a>=1 AND params.b!='x'",
        "metrics.a >= 1 aNd params.b != 'x'",
        "\n metrics.a\t>=\n1\n\tand\nparams.b\n!=\n'x' \n",
        "metrics.a>=1 and params.b!='x'",
    ):
        assert parse_filter(text) == expected, text


def test_and_right_after_a_string_needs_no_space() -> None:
    assert len(parse_filter("params.a = 'x'AND params.b = 'y'")) == 2


# -- entities and keys ------------------------------------------------------------------------------------

ENTITY_SPELLINGS: list[tuple[str, Entity]] = [
    ("metric", "metric"),
    ("metrics", "metric"),
    ("param", "param"),
    ("params", "param"),
    ("parameter", "param"),
    ("parameters", "param"),
    ("tag", "tag"),
    ("tags", "tag"),
    ("attribute", "attribute"),
    ("attributes", "attribute"),
    ("attr", "attribute"),
    ("run", "attribute"),
    ("dataset", "dataset"),
    ("datasets", "dataset"),
]


@pytest.mark.parametrize(("spelling", "entity"), ENTITY_SPELLINGS)
def test_entity_spellings(spelling: str, entity: Entity) -> None:
    cases: dict[Entity, tuple[str, str, Value]] = {
        "metric": ("acc", "1", 1.0),
        "param": ("lr", "'0.1'", "0.1"),
        "tag": ("team", "'cv'", "cv"),
        "attribute": ("run_name", "'x'", "x"),
        "dataset": ("name", "'x'", "x"),
    }
    key, value, expected = cases[entity]
    for prefix in (spelling, spelling.upper(), spelling.capitalize()):
        assert one(f"{prefix}.{key} = {value}") == Comparison(entity, key, "=", expected)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("metrics.acc = 1", "acc"),
        ("metrics.1st_epoch = 1", "1st_epoch"),
        ("metrics.val-loss = 1", "val-loss"),
        ("metrics.train/loss = 1", "train/loss"),
        ("metrics.a.b.c = 1", "a.b.c"),
        ("metrics.`my metric` = 1", "my metric"),
        ("metrics.`a.b c-d` = 1", "a.b c-d"),
        ('metrics."prediction accuracy" = 1', "prediction accuracy"),
        ("metrics.'prediction accuracy' = 1", "prediction accuracy"),
        ("metrics.`größe` = 1", "größe"),
        ("metrics.`it``s` = 1", "it`s"),
        ('metrics."say ""hi""" = 1', 'say "hi"'),
        ("metrics.`a'b\"c` = 1", "a'b\"c"),
        ("metrics.`AND = 1` = 1", "AND = 1"),
        ("metrics.Acc = 1", "Acc"),  # keys keep their case
    ],
)
def test_keys(text: str, key: str) -> None:
    assert one(text) == Comparison("metric", key, "=", 1.0)


def test_quoted_name_with_entity_prefix_is_split_like_mlflow_order_by() -> None:
    assert one("`tags.my tag` = 'x'") == Comparison("tag", "my tag", "=", "x")
    assert one("\"params.lr\" = 'x'") == Comparison("param", "lr", "=", "x")
    assert one("`Metrics.a.b` > 1") == Comparison("metric", "a.b", ">", 1.0)


def test_dataset_keys() -> None:
    for key in ("name", "digest", "context", "NAME"):
        assert one(f"datasets.{key} = 'x'") == Comparison("dataset", key.lower(), "=", "x")
    assert one("datasets.context IN ('train', 'eval')").value == ("train", "eval")


# -- attributes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status = 'FINISHED'", Comparison("attribute", "status", "=", "FINISHED")),
        ("run_name = 'x'", Comparison("attribute", "run_name", "=", "x")),
        ("attributes.run_name = 'x'", Comparison("attribute", "run_name", "=", "x")),
        ("run_id IN ('a', 'b')", Comparison("attribute", "run_id", "IN", ("a", "b"))),
        ("user_id != 'me'", Comparison("attribute", "user_id", "!=", "me")),
        ("artifact_uri LIKE 's3://%'", Comparison("attribute", "artifact_uri", "LIKE", "s3://%")),
        ("lifecycle_stage = 'Deleted'", Comparison("attribute", "lifecycle_stage", "=", "deleted")),
        ("start_time >= 1700000000000", Comparison("attribute", "start_time", ">=", 1700000000000)),
        ("end_time < 5", Comparison("attribute", "end_time", "<", 5)),
        ("end_time IS NULL", Comparison("attribute", "end_time", "IS NULL", None)),
        ("created > 1", Comparison("attribute", "start_time", ">", 1)),  # MLflow's alias
        ("`run name` = 'x'", Comparison("attribute", "run_name", "=", "x")),
        ("attributes.`Run Name` = 'x'", Comparison("attribute", "run_name", "=", "x")),
        ("STATUS = 'running'", Comparison("attribute", "status", "=", "RUNNING")),
        ("run.status = 'killed'", Comparison("attribute", "status", "=", "KILLED")),
    ],
)
def test_run_attributes(text: str, expected: Comparison) -> None:
    assert one(text) == expected


def test_time_attributes_are_ints_with_every_digit() -> None:
    value = one("start_time = 9007199254740993").value  # 2**53 + 1: a float would lose the 3
    assert value == 9007199254740993
    assert isinstance(value, int)
    assert one("start_time > 1.7e12").value == 1_700_000_000_000
    assert one("start_time > -5").value == -5
    assert one(f"start_time < {2**63 - 1}").value == 2**63 - 1


def test_status_values_are_checked_except_in_patterns() -> None:
    assert one("status IN ('finished', 'Failed')").value == ("FINISHED", "FAILED")
    assert one("status NOT IN ('SCHEDULED')").value == ("SCHEDULED",)
    assert one("status LIKE 'FIN%'").value == "FIN%"
    filter_error("status = 'DONE'", 10, "attributes.status must be one of RUNNING, SCHEDULED", "'DONE'")
    filter_error("status IN ('RUNNING', 'nope')", 23, "must be one of", "'nope'")


def test_experiment_attributes() -> None:
    kwargs: dict[str, object] = {"attributes": EXPERIMENT_ATTRIBUTES, "entities": TAGGED_ENTITIES}
    assert parse_filter("name LIKE 'vision-%' and tags.team = 'cv' and create_time > 5", **kwargs) == [  # type: ignore[arg-type]
        Comparison("attribute", "name", "LIKE", "vision-%"),
        Comparison("tag", "team", "=", "cv"),
        Comparison("attribute", "creation_time", ">", 5),
    ]
    assert one("update_time < 1", **kwargs).key == "last_update_time"
    assert one("experiment_id IN ('1', '2')", **kwargs).value == ("1", "2")
    filter_error("metrics.a > 1", 1, "metrics cannot be used here; expected tags or attributes", **kwargs)
    filter_error(
        "run_name = 'x'", 1, "unknown attribute 'run_name'", "(or prefix it: tags.run_name)", **kwargs
    )


def test_registry_attributes() -> None:
    assert one("version_number >= 3", attributes=MODEL_VERSION_ATTRIBUTES) == Comparison(
        "attribute", "version", ">=", 3
    )
    assert one("source_path = 'runs:/x/m'", attributes=MODEL_VERSION_ATTRIBUTES).key == "source"
    assert one("timestamp > 1", attributes=REGISTERED_MODEL_ATTRIBUTES).key == "create_time"


def test_custom_attribute_types() -> None:
    attributes: Mapping[str, AttrType | AttrAlias] = {
        "score": AttrType("number", nullable=True),
        "Kind": AttrType(choices=("Alpha", "beta")),
        "sc": AttrAlias("score"),
    }
    assert one("sc > 1", attributes=attributes) == Comparison("attribute", "score", ">", 1.0)
    assert isinstance(one("score = 2", attributes=attributes).value, float)
    assert one("score IS NOT NULL", attributes=attributes).op == "IS NOT NULL"
    # The AST spells the name as the mapping does, whatever case the filter used.
    assert one("kind = 'ALPHA'", attributes=attributes) == Comparison("attribute", "Kind", "=", "Alpha")


# -- operators and values -----------------------------------------------------------------------------------

NUMERIC_OPS: list[Op] = ["=", "!=", "<", "<=", ">", ">="]


@pytest.mark.parametrize("op", NUMERIC_OPS)
def test_numeric_operators(op: Op) -> None:
    assert one(f"metrics.a {op} 2") == Comparison("metric", "a", op, 2.0)
    assert one(f"metrics.a{op}2") == Comparison("metric", "a", op, 2.0)
    assert one(f"attributes.start_time {op} 2") == Comparison("attribute", "start_time", op, 2)


@pytest.mark.parametrize(
    ("written", "op"),
    [("=", "="), ("!=", "!="), ("LIKE", "LIKE"), ("like", "LIKE"), ("ILIKE", "ILIKE"), ("iLike", "ILIKE")],
)
@pytest.mark.parametrize("entity", ["params", "tags", "datasets", "attributes"])
def test_string_operators(written: str, op: Op, entity: str) -> None:
    key = {"datasets": "digest", "attributes": "run_name"}.get(entity, "k")
    comparison = one(f"{entity}.{key} {written} 'v%'")
    assert (comparison.op, comparison.value) == (op, "v%")


@pytest.mark.parametrize(
    ("written", "op"), [("IN", "IN"), ("in", "IN"), ("NOT IN", "NOT IN"), ("not  in", "NOT IN")]
)
def test_in_lists(written: str, op: Op) -> None:
    assert one(f"params.k {written} ('a')").value == ("a",)
    assert one(f"tags.k {written}('a',\"b\" ,  'c''d')") == Comparison("tag", "k", op, ("a", "b", "c'd"))


@pytest.mark.parametrize(
    ("written", "op"), [("IS NULL", "IS NULL"), ("is null", "IS NULL"), ("Is Not  Null", "IS NOT NULL")]
)
@pytest.mark.parametrize("entity", ["metrics", "params", "tags"])
def test_is_null(written: str, op: Op, entity: str) -> None:
    assert one(f"{entity}.k {written}") == Comparison(entity[:-1], "k", op, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("0", 0.0),
        ("42", 42.0),
        ("-1", -1.0),
        ("+1", 1.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("-.5", -0.5),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("-1.5e+2", -150.0),
        ("1e400", math.inf),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("+Infinity", math.inf),
        ("-INF", -math.inf),
        ("0.1", 0.1),
        ("123456789012345678901234567890", 1.2345678901234568e29),
    ],
)
def test_metric_numbers(literal: str, value: float) -> None:
    parsed = one(f"metrics.a < {literal}").value
    assert isinstance(parsed, float)
    assert parsed == value


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'x'", "x"),
        ('"x"', "x"),
        ("''", ""),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ('"it\'s"', "it's"),
        ("'\"'", '"'),
        ("'a\\b'", "a\\b"),  # a backslash is an ordinary character
        ("'100\\%'", "100\\%"),  # so LIKE escapes reach the store as written
        ("'C:\\new\\'", "C:\\new\\"),
        ("'line\nbreak'", "line\nbreak"),
        ("'  spaced  '", "  spaced  "),
        ("'ünï😀'", "ünï😀"),
        ("'a AND b = 1'", "a AND b = 1"),
    ],
)
def test_strings(literal: str, value: str) -> None:
    assert one(f"params.k = {literal}").value == value


# -- errors ---------------------------------------------------------------------------------------------


def test_error_examples_from_the_brief() -> None:
    message = filter_error("metrics.accuracy foo", 18)
    assert message.startswith(
        "filter: at column 18: expected a comparison operator "
        "(=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL), found 'foo'"
    )
    assert (
        filter_error("metrics.acc = abc", 15)
        == "filter: at column 15: metrics.acc takes a number, found 'abc'"
    )


def test_or_and_parentheses_are_refused() -> None:
    filter_error("metrics.a > 1 OR metrics.b > 1", 15, "OR is not supported", "AND")
    filter_error("metrics.a > 1 or metrics.b > 1", 15, "OR is not supported")
    filter_error("(metrics.a > 1)", 1, "parentheses are not supported")


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        # identifiers
        ("foo.bar = 1", 1, "unknown entity 'foo'; expected metrics, params, tags, attributes or datasets"),
        ("metrics = 1", 8, "expected '.' and a key after 'metrics'"),
        ("metrics. = 1", 9, "expected a key after 'metrics.'"),
        ("metrics.`` = 1", 9, "the key after 'metrics.' is empty"),
        ("tags.'' = 'x'", 6, "the key after 'tags.' is empty"),
        ("metrics.`abc = 1", 9, "unterminated quoted key: add the closing `"),
        ('"status = 1', 1, 'unterminated quoted name: add the closing "'),
        ("acc > 1", 1, "unknown attribute 'acc'; expected one of: run_id, run_name, status"),
        ("acc > 1", 1, "(or prefix it: metrics.acc, params.acc, tags.acc)"),
        ("attributes.nope = 'x'", 12, "unknown attribute 'nope'"),
        ("`weird key` = 'x'", 1, "unknown attribute 'weird key'"),
        ("datasets.source = 'x'", 10, "unknown dataset key 'source'; expected name, digest or context"),
        ("= 1", 1, "expected a key such as metrics.acc, params.lr, tags.team, datasets.name or run_id"),
        ("1 = 1", 1, "found '1'"),
        # operators
        ("metrics.a 1", 11, "expected a comparison operator"),
        ("metrics.a", 10, "found the end of the filter"),
        ("metrics.a == 1", 11, "'==' is not an operator; use '='"),
        ("params.a <> 'x'", 10, "'<>' is not an operator; use '!='"),
        ("params.a NOT LIKE 'x'", 14, "expected IN after NOT, found 'LIKE'"),
        ("params.a IS 'x'", 13, "expected NULL after IS, found \"'x'\""),
        ("params.a IS NOT 1", 17, "expected NULL after IS NOT"),
        (
            "metrics.a LIKE 'x'",
            11,
            "metrics.a does not take LIKE; use =, !=, <, <=, >, >=, IS NULL, IS NOT NULL",
        ),
        ("metrics.a IN (1)", 11, "metrics.a does not take IN"),
        ("params.a > 'x'", 10, "params.a does not take >; use =, !=, LIKE, ILIKE, IN, NOT IN, IS NULL"),
        ("status < 'x'", 8, "attributes.status does not take <; use =, !=, LIKE, ILIKE, IN, NOT IN"),
        ("start_time IS NULL", 12, "attributes.start_time does not take IS NULL"),
        ("datasets.name IS NULL", 15, "datasets.name does not take IS NULL"),
        ("start_time LIKE '1%'", 12, "attributes.start_time does not take LIKE"),
        # values
        ("metrics.a > 'x'", 13, "metrics.a takes a number, found \"'x'\""),
        ("metrics.a > '0.9'", 13, "metrics.a takes a number, found \"'0.9'\"; write 0.9 without quotes"),
        (
            'start_time > "-5"',
            14,
            "takes a number (milliseconds since the epoch), found '\"-5\"'; write -5 without",
        ),
        ("metrics.a >", 12, "metrics.a takes a number, found the end of the filter"),
        ("metrics.a > - 1", 13, "takes a number, found '-'"),
        ("metrics.a > NaN", 13, "metrics.a cannot be compared with NaN"),
        ("metrics.a > -nan", 13, "cannot be compared with NaN"),
        ("metrics.a > 1abc", 13, "invalid number '1abc'"),
        ("metrics.a > 1.2.3", 13, "invalid number '1.2.3'"),
        ("metrics.a > 1e", 13, "invalid number '1e'"),
        ("metrics.a > 0x10", 13, "invalid number '0x10'"),
        ("metrics.a > infinite", 13, "takes a number, found 'infinite'"),
        ("metrics.a > 1²", 13, "invalid number"),
        ("start_time > 'yesterday'", 14, "takes a number (milliseconds since the epoch)"),
        ("start_time > 1.5", 14, "attributes.start_time takes a whole number, found '1.5'"),
        ("start_time > inf", 14, "attributes.start_time: inf is out of range"),
        (f"start_time > {2**63}", 14, "out of range"),
        ("start_time > 1e30", 14, "out of range"),
        ("start_time > " + "9" * 5000, 14, "out of range"),
        ("params.a = 1", 12, "params.a takes a quoted string, found '1'; write '1'"),
        ("params.a = abc", 12, "params.a takes a quoted string, found 'abc'"),
        ("params.a = `abc`", 12, "takes a quoted string"),
        ("params.a = 'abc", 12, "unterminated string: add the closing '"),
        ("params.a = \"abc'", 12, 'unterminated string: add the closing "'),
        ("params.a = 'it''s", 12, "unterminated string"),
        ("params.a IN 'x'", 13, "IN takes a list in parentheses, e.g. ('a', 'b'), found \"'x'\""),
        ("params.a IN ()", 14, "the IN list is empty"),
        ("params.a NOT IN ( )", 19, "the NOT IN list is empty"),
        ("params.a IN ('x',)", 18, "params.a takes a quoted string, found ')'"),
        ("params.a IN ('x' 'y')", 18, "expected ',' or ')' in the IN list, found \"'y'\""),
        ("params.a IN ('x'", 17, "expected ',' or ')' in the IN list, found the end of the filter"),
        ("params.a IN (1, 2)", 14, "takes a quoted string, found '1'; write '1'"),
        # the end
        ("metrics.a > 1 metrics.b > 1", 15, "expected AND or the end of the filter, found 'metrics.b'"),
        ("metrics.a > 1 and", 18, "expected a comparison after AND, found the end of the filter"),
        ("metrics.a > 1 AND ", 19, "expected a comparison after AND"),
        ("metrics.a > 1 andx", 15, "expected AND or the end of the filter, found 'andx'"),
        ("metrics.a > 1 && metrics.b > 1", 15, "found '&'"),
        ("params.a = 'x' 'y'", 16, "found \"'y'\""),
        ("params.a = 'x')", 15, "found ')'"),
        ("and metrics.a > 1", 1, "unknown attribute 'and'"),
    ],
)
def test_errors(text: str, column: int, fragment: str) -> None:
    filter_error(text, column, fragment)


def test_hint_for_keys_that_need_backquotes() -> None:
    hint = "put keys with spaces or other special characters in backquotes"
    filter_error("metrics.my metric > 1", 12, "found 'metric'", hint)
    filter_error("metrics.größe > 1", 11, "found 'ö'", hint)
    filter_error("tags.a:b = 'x'", 7, hint)
    message = filter_error("metrics.a foo 1", 11, "found 'foo'")
    assert hint not in message


def test_columns_count_characters_including_newlines() -> None:
    filter_error("metrics.a > 1 and\nparams.b = 2", 30, "params.b takes a quoted string")
    text = "params.`ü` = 'x' and zzz = 'x'"
    filter_error(text, 22, "unknown attribute 'zzz'")  # ü is one column
    assert text.index("zzz") + 1 == 22


def test_long_snippets_are_shortened() -> None:
    message = filter_error("metrics.a > 1 " + "x" * 1000, 15, "...")
    assert len(message) < 200


@pytest.mark.parametrize(
    "text",
    [
        "x" * 10_000 + " = 'a'",
        "`" + "``" * 5_000 + "` = 'a'",
        "`" + "``" * 20 + "` = 'a'",
        "x" * 10_000 + ".a = 'a'",
        "metrics.`" + "x" * 10_000 + "` LIKE 'a'",
        "datasets.`" + "x" * 10_000 + "` = 'a'",
        "status = '" + "x" * 10_000 + "'",
        "start_time > " + "9" * 10_000,
        "start_time > 1" + "0" * 10_000 + ".5",
        "start_time > 0." + "1" * 10_000,
        "metrics.a > " + "1" * 10_000 + "x",
    ],
)
def test_messages_stay_short_whatever_the_input(text: str) -> None:
    # Status messages travel in gRPC headers, which servers and proxies cap at a few kilobytes.
    with pytest.raises(InvalidArgument) as info:
        parse_filter(text)
    assert len(info.value.message) < 400, info.value.message


def test_control_characters_are_escaped_in_messages() -> None:
    message = filter_error("metrics.a > 1 \x00", 15)
    assert "\x00" not in message
    assert "\\x00" in message


def test_nul_is_refused() -> None:
    filter_error("params.a = 'x\x00'", 14, "NUL character")
    with pytest.raises(InvalidArgument, match="NUL character") as info:
        parse_order_by(["metrics.`a\x00`"])
    assert info.value.field == "order_by"


def test_entities_restriction() -> None:
    filter_error("datasets.name = 'x'", 1, "datasets cannot be used here", entities={"metric", "tag"})
    filter_error(
        "params.a = 'x'", 1, "expected metrics, tags or attributes", entities={"metric", "tag", "attribute"}
    )
    assert parse_filter("tags.a = 'x'", entities=TAGGED_ENTITIES) == [Comparison("tag", "a", "=", "x")]


# -- order by ----------------------------------------------------------------------------------------------


def test_order_by() -> None:
    items = [
        "metrics.acc DESC",
        "params.lr",
        "attributes.start_time ASC",
        "`tags.my tag`",
        "tags.`my tag` desc",
        "run_name asc",
        "created",
        '  metrics."a b"  Desc  ',
        "status",
    ]
    assert parse_order_by(items) == [
        OrderKey("metric", "acc", ascending=False),
        OrderKey("param", "lr"),
        OrderKey("attribute", "start_time"),
        OrderKey("tag", "my tag"),
        OrderKey("tag", "my tag", ascending=False),
        OrderKey("attribute", "run_name"),
        OrderKey("attribute", "start_time"),
        OrderKey("metric", "a b", ascending=False),
        OrderKey("attribute", "status"),
    ]
    assert parse_order_by([]) == []


def test_order_by_with_other_attributes() -> None:
    assert parse_order_by(
        ["name ASC", "create_time DESC"], attributes=EXPERIMENT_ATTRIBUTES, entities=TAGGED_ENTITIES
    ) == [OrderKey("attribute", "name"), OrderKey("attribute", "creation_time", ascending=False)]


@pytest.mark.parametrize(
    ("items", "prefix", "fragment"),
    [
        ([""], "order_by[0]: is empty", "expected a key such as metrics.acc"),
        (["metrics.a", "  "], "order_by[1]: is empty", ""),
        (
            ["metrics.a DESCENDING"],
            "order_by[0]: at column 11: ",
            "expected ASC, DESC or the end of the item",
        ),
        (
            ["metrics.a", "metrics.b DESC x"],
            "order_by[1]: at column 16: ",
            "expected the end of the item after DESC",
        ),
        (["datasets.name"], "order_by[0]: at column 1: ", "datasets cannot be used here"),
        (["nope"], "order_by[0]: at column 1: ", "unknown attribute 'nope'"),
        (["metrics.a = 1"], "order_by[0]: at column 11: ", "found '='"),
        (["metrics.`a DESC"], "order_by[0]: at column 9: ", "unterminated quoted key"),
        (["metrics.my metric DESC"], "order_by[0]: at column 12: ", "backquotes"),
    ],
)
def test_order_by_errors(items: list[str], prefix: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_order_by(items)
    assert info.value.field == "order_by"
    assert info.value.message.startswith(prefix), info.value.message
    assert fragment in info.value.message


# -- rendering ---------------------------------------------------------------------------------------------


def test_render() -> None:
    comparisons = [
        Comparison("metric", "my metric", ">", -1.5),
        Comparison("param", "lr", "IN", ("0.1", "it's")),
        Comparison("tag", "a`b", "IS NULL", None),
        Comparison("attribute", "start_time", "<", 5),
        Comparison("metric", "x", "<", math.inf),
    ]
    text = render_filter(comparisons)
    assert text == (
        "metrics.`my metric` > -1.5 AND params.lr IN ('0.1', 'it''s') AND tags.`a``b` IS NULL"
        " AND attributes.start_time < 5 AND metrics.x < inf"
    )
    assert parse_filter(text) == comparisons
    assert render_identifier("dataset", "name") == "datasets.name"
    keys = [OrderKey("metric", "a b", ascending=False), OrderKey("attribute", "status")]
    assert render_order_by(keys) == ["metrics.`a b` DESC", "attributes.status ASC"]
    with pytest.raises(ValueError, match="NaN"):
        render_filter([Comparison("metric", "x", "=", math.nan)])


def test_public_names_are_pinned() -> None:
    import tracklane_server.store.query.filter as module

    assert set(module.__all__) == {
        *("ALL_ENTITIES", "TAGGED_ENTITIES", "RUN_ATTRIBUTES", "EXPERIMENT_ATTRIBUTES", "SUMMARIES"),
        *("REGISTERED_MODEL_ATTRIBUTES", "MODEL_VERSION_ATTRIBUTES"),
        *("AttrAlias", "AttrSpec", "AttrType", "Comparison", "Entity", "Op", "OrderKey", "Summary", "Value"),
        *("parse_filter", "parse_order_by", "render_filter", "render_identifier", "render_order_by"),
    }
    assert len(module.__all__) == 21


# -- properties ----------------------------------------------------------------------------------------------

TOKENS = [
    "metrics", "params", "tags", "attributes", "datasets", "run", "status", "start_time", "end_time",
    "name", ".", "`", '"', "'", "``", "''", "a", "my key", "=", "!=", "<", "<=", ">", ">=", "==", "<>",
    "LIKE", "ilike", "IN", "NOT", "IS", "NULL", "AND", "or", "(", ")", ",", "1", "-2.5e3", ".5", "inf",
    "NaN", "1e999", "9" * 30, "'x'", "'FINISHED'", " ", "\t", "\n", "é", "\x00", "\\", "ASC", "DESC",
    ".min", ".count", "max", "first",
]  # fmt: skip
token_soup = st.lists(st.sampled_from(TOKENS), max_size=25).map("".join) | st.lists(
    st.sampled_from(TOKENS), max_size=25
).map(" ".join)
attribute_maps = st.sampled_from(
    [RUN_ATTRIBUTES, EXPERIMENT_ATTRIBUTES, REGISTERED_MODEL_ATTRIBUTES, MODEL_VERSION_ATTRIBUTES]
)


def outcome(parse: Callable[[], T]) -> T | InvalidArgument:
    """The parse result or its InvalidArgument; any other exception fails the test."""
    try:
        return parse()
    except InvalidArgument as err:
        return err


@settings(max_examples=500)
@given(text=st.text() | token_soup, attributes=attribute_maps)
def test_any_text_parses_or_raises_invalid_argument(
    text: str, attributes: Mapping[str, AttrType | AttrAlias]
) -> None:
    result = outcome(lambda: parse_filter(text, attributes=attributes))
    if isinstance(result, InvalidArgument):
        assert result.field == "filter"
        assert result.message.startswith("filter: at column ")
        assert len(result.message) < 400
    else:
        assert all(isinstance(c, Comparison) for c in result)


@settings(max_examples=300)
@given(items=st.lists(st.text() | token_soup, max_size=4))
def test_any_order_by_parses_or_raises_invalid_argument(items: list[str]) -> None:
    result = outcome(lambda: parse_order_by(items))
    if isinstance(result, InvalidArgument):
        assert result.field == "order_by"
        assert result.message.startswith("order_by[")
    else:
        assert len(result) == len(items)


KIND_OPS: dict[str, list[Op]] = {
    "number": ["=", "!=", "<", "<=", ">", ">="],
    "string": ["=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"],
}
numbers = st.floats(allow_nan=False)
# No NUL: the parser refuses it (no stored value can hold one), see test_nul_is_refused.
no_nul = st.characters(exclude_characters="\x00")
strings = st.text(no_nul, max_size=12)


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    """A valid comparison for the run defaults (aliases already resolved)."""
    entity: Entity = draw(st.sampled_from(sorted(ALL_ENTITIES)))
    if entity == "attribute":
        key = draw(st.sampled_from([k for k, v in RUN_ATTRIBUTES.items() if isinstance(v, AttrType)]))
        spec = RUN_ATTRIBUTES[key]
        assert isinstance(spec, AttrType)
        kind, choices, nullable = spec.kind, spec.choices, spec.nullable
    else:
        key = draw(
            st.sampled_from(["name", "digest", "context"])
            if entity == "dataset"
            else st.text(no_nul, min_size=1)
        )
        kind, choices, nullable = ("number" if entity == "metric" else "string"), (), entity != "dataset"
    summary: Summary = draw(st.sampled_from(["", *SUMMARIES])) if entity == "metric" else ""
    if summary == "count":
        kind = "integer"
    ops = KIND_OPS["string" if kind == "string" else "number"] + (
        ["IS NULL", "IS NOT NULL"] if nullable else []
    )
    op = draw(st.sampled_from(ops))
    value: Value
    item = st.sampled_from(choices) if choices and op != "LIKE" and op != "ILIKE" else strings
    if op in ("IS NULL", "IS NOT NULL"):
        value = None
    elif op in ("IN", "NOT IN"):
        value = tuple(draw(st.lists(item, min_size=1, max_size=4)))
    elif kind == "string":
        value = draw(item)
    elif kind == "integer":
        value = draw(st.integers(-(2**63), 2**63 - 1))
    else:
        value = draw(numbers)
    return Comparison(entity, key, op, value, summary)


BARE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def _quote(text: str, quote: str) -> str:
    return quote + text.replace(quote, quote * 2) + quote


@st.composite
def written(draw: st.DrawFn, items: list[Comparison]) -> str:
    """Writes comparisons the way a person might: any spelling, case, quoting and spacing."""
    space = st.sampled_from([" ", "  ", "\t", "\n", " \n "])
    spellings = {e: [s for s, entity in ENTITY_SPELLINGS if entity == e] for e in ALL_ENTITIES}
    case: Callable[[str], str] = draw(st.sampled_from([str.upper, str.lower, str.capitalize]))
    quotes = st.sampled_from(["`", '"', "'"])
    terms = []
    for c in items:
        prefix = case(draw(st.sampled_from(spellings[c.entity])))
        key = case(c.key) if c.entity in ("attribute", "dataset") else c.key
        style = draw(st.sampled_from(["bare", "prefixed", "quoted key", "quoted name"]))
        tail = f".{case(c.summary)}" if c.summary else ""
        # A bare metric key ending in .min (etc.) reads as a summary: such a key must be quoted.
        ambiguous = c.entity == "metric" and key.rpartition(".")[2].lower() in SUMMARIES and "." in key
        if style == "bare" and c.entity == "attribute":
            ident = key
        elif style in ("bare", "prefixed") and BARE_KEY.fullmatch(key) and not ambiguous:
            ident = f"{prefix}.{key}{tail}"
        elif style == "quoted name" and not ambiguous:
            ident = _quote(f"{prefix}.{key}{tail}", draw(quotes))
        else:
            ident = f"{prefix}.{_quote(key, draw(quotes))}{tail}"
        op = " ".join(case(part) for part in c.op.split(" "))
        if isinstance(c.value, str):
            value = _quote(c.value, draw(st.sampled_from(["'", '"'])))
        elif isinstance(c.value, tuple):
            value = "(" + ",".join(_quote(v, draw(st.sampled_from(["'", '"']))) for v in c.value) + ")"
        elif c.value is None:
            value = ""
        else:
            value = repr(c.value)
        terms.append(draw(space).join([ident, op, value]).rstrip())
    return (draw(space) + case("and") + draw(space)).join(terms)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), items=st.lists(comparisons(), max_size=5))
def test_round_trip(data: st.DataObject, items: list[Comparison]) -> None:
    assert parse_filter(render_filter(items)) == items
    assert parse_filter(data.draw(written(items))) == items


ORDERABLE: list[Entity] = ["metric", "param", "tag"]


@settings(max_examples=200)
@given(
    keys=st.lists(
        st.builds(
            OrderKey,
            entity=st.sampled_from(ORDERABLE),
            key=st.text(no_nul, min_size=1),
            ascending=st.booleans(),
        ),
        max_size=5,
    )
)
def test_order_by_round_trip(keys: list[OrderKey]) -> None:
    assert parse_order_by(render_order_by(keys)) == keys


@settings(max_examples=100)
@given(key=st.text(no_nul, min_size=1), summary=st.sampled_from(SUMMARIES), ascending=st.booleans())
def test_order_by_summary_round_trip(key: str, summary: Summary, ascending: bool) -> None:
    keys = [OrderKey("metric", key, ascending, summary), OrderKey("metric", key, ascending)]
    assert parse_order_by(render_order_by(keys)) == keys


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.loss.min < 0.1", Comparison("metric", "loss", "<", 0.1, "min")),
        ("metrics.loss.MAX >= 2", Comparison("metric", "loss", ">=", 2.0, "max")),
        ("metric.val.loss.first = 1", Comparison("metric", "val.loss", "=", 1.0, "first")),
        ("metrics.loss.count > 10", Comparison("metric", "loss", ">", 10, "count")),
        ("metrics.`loss.min` < 1", Comparison("metric", "loss.min", "<", 1.0)),  # a key of that name
        ("metrics.`loss.min`.count = 3", Comparison("metric", "loss.min", "=", 3, "count")),
        ("`metrics.loss.max` IS NULL", Comparison("metric", "loss", "IS NULL", None, "max")),
        ("params.lr.min = 'x'", Comparison("param", "lr.min", "=", "x")),  # params have no summaries
        ("metrics.loss.minimum > 1", Comparison("metric", "loss.minimum", ">", 1.0)),
    ],
)
def test_metric_summaries(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == [expected]


@pytest.mark.parametrize(
    ("text", "column", "says"),
    [
        ("metrics.loss.count > 1.5", 22, "whole number"),
        ("metrics.`loss`.avg > 1", 16, "expected min, max, first, count"),
        ("metrics.loss.min LIKE 'a'", 18, "does not take LIKE"),
    ],
)
def test_summary_errors_name_the_column(text: str, column: int, says: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_filter(text)
    assert err.value.message.startswith(f"filter: at column {column}: ")
    assert says in err.value.message


# -- linear time ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda n: " AND ".join(f"metrics.m{i} > {i}" for i in range(n // 20)),
        lambda n: "params.a = '" + "''" * (n // 2) + "'",
        lambda n: "params.a = '" + "x" * n,
        lambda n: "`" * n,
        lambda n: "metrics." + "a" * n,
        lambda n: "metrics.a > " + "9" * n,
        lambda n: "params.a IN (" + "'x'," * (n // 4) + "'x')",
        lambda n: "(" * n,
        lambda n: " " * n + "x",
    ],
)
def test_large_inputs_take_linear_time(make: Callable[[int], str]) -> None:
    text = make(400_000)
    started = time.perf_counter()
    outcome(lambda: parse_filter(text))
    assert time.perf_counter() - started < 2.0  # quadratic would take minutes
