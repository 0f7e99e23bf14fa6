"""JSON in and out as MLflow's server reads and writes it.

In: a POST/PATCH/DELETE body (or a GET's query string) is parsed into the route's MLflow request
message by protobuf's own JSON parser, as MLflow's ``_get_request_message`` does, then checked with
the schema MLflow's handler for that request uses (generated CHECKS, read from MLflow's
handlers.py): a required field absent or "" is ``Missing value for required parameter 'key'``,
also inside LogBatch's items (``metrics[3].timestamp``); when parsing failed, a value of the
wrong JSON type is ``Invalid value 31 for parameter 'run_id' supplied``. Both are
INVALID_PARAMETER_VALUE, HTTP 400, with MLflow's exact wording.

Out: the adapter builds plain dicts in MLflow's JSON shape (snake_case names, enums as their names,
int64 as JSON numbers like MLflow's ``message_to_json``, NaN and infinities as "NaN", "Infinity",
"-Infinity" like protobuf's JSON); orjson writes them in one buffer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from starlette.responses import Response

from tracklane_server.http.mlflow_rest.errors import invalid
from tracklane_server.http.mlflow_rest.generated.mlflow_api import CHECKS
from tracklane_server.http.mlflow_rest.schema import message_class

__all__ = ["decode", "double", "json_response", "query_json"]

_HINT = " See the API docs for more information about request parameters."


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


def decode(body: Any, descriptor: Descriptor, path_params: Mapping[str, str] | None = None) -> Any:
    """The request message of ``body`` (a JSON value), checked as MLflow's handler checks it.

    Raises:
        MlflowError: INVALID_PARAMETER_VALUE naming the parameter, in MLflow's words.
    """
    if not isinstance(body, dict):
        body = {}
    if path_params:
        body = {**body, **path_params}
    message = message_class(descriptor.full_name)()
    failure = ""
    try:
        json_format.ParseDict(body, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        failure = str(exc)
    # As MLflow: the schema's checks in its order; the type checks only when parsing failed.
    for field, checks in CHECKS.get(descriptor.full_name, {}).items():
        if field not in body and "required" not in checks:
            continue
        value = body.get(field)
        if field == "run_id" and value is None:
            value = body.get("run_uuid")  # MLflow's older spelling stands in
        for check in checks:
            _apply(check, field, value, types=bool(failure))
    if failure:
        raise invalid(failure + "." + _HINT)
    return message


def _apply(check: str, field: str, value: Any, *, types: bool) -> None:
    if check == "required":
        if value is None or value == "":
            raise invalid(f"Missing value for required parameter '{field}'." + _HINT)
    elif check.startswith("items_required:"):
        for index, item in enumerate(value if isinstance(value, list) else []):
            for key in check.partition(":")[2].split(","):
                got = item.get(key) if isinstance(item, dict) else None
                if got is None or got == "":
                    raise invalid(f"Missing value for required parameter '{field}[{index}].{key}'." + _HINT)
    elif check == "items_key_present":
        for item in value if isinstance(value, list) else []:
            if not isinstance(item, dict) or item.get("key") in (None, ""):
                raise invalid(f"Missing value for required parameter '{field}'." + _HINT)
    elif types and not _TYPE_CHECKS.get(check, _any)(value):
        hint = f" Hint: Value was of type '{type(value).__name__}'."
        shown = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        raise invalid(f"Invalid value {shown} for parameter '{field}' supplied: {hint}" + _HINT)


def _any(_value: Any) -> bool:
    return True


def _intlike(value: Any) -> bool:
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


def _floatlike(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


#: MLflow's _assert_string, _assert_intlike... by the names request_checks.json uses.
_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "intlike": _intlike,
    "floatlike": _floatlike,
    "bool": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "items_string": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
}


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
