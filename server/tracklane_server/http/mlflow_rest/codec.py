"""JSON in and out as MLflow's server reads and writes it.

In: a POST/PATCH/DELETE body (or a GET's query string) is parsed into the route's MLflow request
message by protobuf's own JSON parser, as MLflow's ``_get_request_message`` does, then checked as
MLflow checks it: a field its proto marks ``validate_required`` that is absent or "" is
``Missing value for required parameter 'key'``, also inside repeated messages (``metrics[3].key``);
a value of the wrong JSON type is ``Invalid value 31 for parameter 'run_id' supplied``. Both are
INVALID_PARAMETER_VALUE, HTTP 400, with MLflow's exact wording.

Out: the adapter builds plain dicts in MLflow's JSON shape (snake_case names, enums as their names,
int64 as JSON numbers like MLflow's ``message_to_json``, NaN and infinities as "NaN", "Infinity",
"-Infinity" like protobuf's JSON); orjson writes them in one buffer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from starlette.responses import Response

from tracklane_server.http.mlflow_rest.errors import invalid
from tracklane_server.http.mlflow_rest.generated.mlflow_api import REQUIRED
from tracklane_server.http.mlflow_rest.schema import message_class

__all__ = ["decode", "double", "json_response", "query_json"]

_HINT = " See the API docs for more information about request parameters."
_INTS = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_FLOATS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})


def query_json(descriptor: Descriptor, args: Any) -> dict[str, Any]:
    """A GET's query parameters as the JSON MLflow builds from them (lists for repeated fields)."""
    out: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.name not in args:
            continue
        if field.is_repeated:
            out[field.name] = args.getlist(field.name)
        else:
            value = args.get(field.name)
            if field.type == FieldDescriptor.TYPE_BOOL:
                if value.lower() not in ("true", "false"):
                    raise invalid(f"Invalid boolean value: {value}, must be 'true' or 'false'.")
                value = value.lower() == "true"
            out[field.name] = value
    return out


def decode(body: Any, descriptor: Descriptor, path_params: Mapping[str, str] = ()) -> Message:  # type: ignore[assignment]
    """The request message of ``body`` (a JSON value), checked as MLflow checks it.

    Raises:
        MlflowError: INVALID_PARAMETER_VALUE naming the parameter, in MLflow's words.
    """
    if not isinstance(body, dict):
        body = {}
    if path_params:
        body = {**body, **path_params}
    message = message_class(descriptor.full_name)()
    try:
        json_format.ParseDict(body, message, ignore_unknown_fields=True)
        parsed = True
    except json_format.ParseError as exc:
        parsed = False
        failure = str(exc)
    _check(body, descriptor, "", check_types=not parsed)
    if not parsed:
        raise invalid(failure + "." + _HINT)
    return message


def _check(body: Mapping[str, Any], descriptor: Descriptor, prefix: str, *, check_types: bool) -> None:
    required = REQUIRED.get(descriptor.full_name, ())
    for field in descriptor.fields:
        name = prefix + field.name
        value = body.get(field.name)
        if value is None and field.json_name != field.name:
            value = body.get(field.json_name)
        missing = value is None or value == ""
        # MLflow's older run_uuid stands in for run_id.
        if field.name in required and missing and not (field.name == "run_id" and body.get("run_uuid")):
            raise invalid(f"Missing value for required parameter '{name}'." + _HINT)
        if value is None:
            continue
        if check_types and not _type_ok(field, value):
            hint = f" Hint: Value was of type '{type(value).__name__}'."
            shown = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
            raise invalid(f"Invalid value {shown} for parameter '{name}' supplied: {hint}" + _HINT)
        nested = field.message_type
        if nested is not None and not nested.GetOptions().map_entry:
            items = value if field.is_repeated and isinstance(value, list) else [value]
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    where = f"{name}[{index}]." if field.is_repeated else f"{name}."
                    _check(item, nested, where, check_types=check_types)


def _type_ok(field: FieldDescriptor, value: Any) -> bool:
    """MLflow's _assert_string / _assert_intlike / _assert_floatlike / _assert_bool / _assert_array."""
    if field.is_repeated:
        return isinstance(value, list) and (
            field.type != FieldDescriptor.TYPE_STRING or all(isinstance(v, str) for v in value)
        )
    if field.type == FieldDescriptor.TYPE_STRING:
        return isinstance(value, str)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return isinstance(value, bool)
    if field.type in _INTS:
        try:
            return isinstance(int(value), int) and not isinstance(value, bool | float)
        except (TypeError, ValueError):
            return False
    if field.type in _FLOATS:
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return True
    return True


def double(value: float) -> float | str:
    """A double as protobuf's JSON writes it: NaN and the infinities as strings."""
    if math.isfinite(value):
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def json_response(body: Mapping[str, Any], status: int = 200) -> Response:
    """One JSON document, written in one buffer."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
