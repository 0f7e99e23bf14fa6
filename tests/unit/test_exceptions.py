"""The error table: one class per code, details survive the wire format, builtin bases hold."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from tracklane import exceptions


@pytest.mark.parametrize(
    "cls",
    [
        exceptions.NotFound,
        exceptions.AlreadyExists,
        exceptions.InvalidArgument,
        exceptions.FailedPrecondition,
        exceptions.PermissionDenied,
        exceptions.Unauthenticated,
        exceptions.ResourceExhausted,
        exceptions.Unavailable,
        exceptions.Unimplemented,
    ],
)
def test_status_round_trip(cls: type[exceptions.TracklaneError]) -> None:
    status = cls("it went wrong", field="params[2].key", reason="BAD_KEY").to_rpc_status()
    assert status.code == cls.code.value[0]
    violation = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(violation)
    assert violation.field_violations[0].field == "params[2].key"
    info = error_details_pb2.ErrorInfo()
    assert status.details[1].Unpack(info)
    assert info.reason == "BAD_KEY"
    assert exceptions.error_for_code(cls.code) is cls


def test_builtin_bases_keep_except_clauses_working() -> None:
    with pytest.raises(LookupError):
        raise exceptions.NotFound("missing")
    with pytest.raises(ValueError, match="bad"):
        raise exceptions.InvalidArgument("bad", field="name")


def test_unknown_codes_map_to_internal() -> None:
    assert exceptions.error_for_code(grpc.StatusCode.UNKNOWN) is exceptions.Internal
    assert exceptions.from_item_error(5, "gone", "run_id").field == "run_id"
    assert isinstance(exceptions.from_item_error(5, "gone"), exceptions.NotFound)
