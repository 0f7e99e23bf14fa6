"""Typed errors: one class per gRPC status code, shared by the client and the server.

The server raises these; its interceptor turns them into a gRPC status with a
``google.rpc.BadRequest`` detail naming the offending field and an ``ErrorInfo`` with the reason.
The client turns a failed call back into the same class, so ``except tracklane.exceptions.NotFound``
works the same in-process and across the wire. Builtin bases keep ``except LookupError`` /
``except ValueError`` working.
"""

from __future__ import annotations

from typing import ClassVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "TracklaneError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "from_rpc_error",
]

ERROR_DOMAIN = "tracklane.dev"


class TracklaneError(Exception):
    """Base of every Tracklane error.

    Attributes:
        message: What went wrong and what to do, in English.
        field: The offending request field (e.g. ``"params[2].key"``), or ``""``.
        reason: A stable UPPER_SNAKE identifier for programs, or ``""``.
    """

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, field: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, field={self.field!r})"

    def to_rpc_status(self) -> status_pb2.Status:
        """The google.rpc.Status the server sends for this error."""
        details: list[any_pb2.Any] = []
        if self.field:
            bad_request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=self.field, description=self.message)
                ]
            )
            details.append(_pack(bad_request))
        if self.reason:
            details.append(_pack(error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN)))
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=details)


class Cancelled(TracklaneError):
    """The call was cancelled, usually by the caller."""

    code = grpc.StatusCode.CANCELLED


class InvalidArgument(TracklaneError, ValueError):
    """A request field is malformed or out of range; ``field`` names it."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(TracklaneError):
    """The call did not finish within its deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(TracklaneError, LookupError):
    """The experiment, run, model, version, tag or file does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(TracklaneError):
    """A resource with that name already exists."""

    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(TracklaneError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(TracklaneError):
    """A limit was hit: message size, batch size, concurrent streams..."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(TracklaneError):
    """The resource is not in a state that allows this (e.g. logging to a deleted run)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(TracklaneError):
    """A concurrent change got in the way; retrying may succeed."""

    code = grpc.StatusCode.ABORTED


class Unimplemented(TracklaneError):
    """The server does not implement this method (yet)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(TracklaneError):
    """A server bug; the server logged the details."""

    code = grpc.StatusCode.INTERNAL


class Unavailable(TracklaneError):
    """The server, its database or its object store cannot be reached right now; retry later."""

    code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(TracklaneError):
    """No valid credentials were sent."""

    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: dict[grpc.StatusCode, type[TracklaneError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        Unimplemented,
        Internal,
        Unavailable,
        Unauthenticated,
    )
}
# Out-of-range reads are invalid arguments to our users; unknown and data loss are server faults.
_BY_CODE[grpc.StatusCode.OUT_OF_RANGE] = InvalidArgument
_BY_CODE[grpc.StatusCode.UNKNOWN] = Internal
_BY_CODE[grpc.StatusCode.DATA_LOSS] = Internal


def error_for_code(code: grpc.StatusCode) -> type[TracklaneError]:
    """The exception class for a gRPC status code."""
    return _BY_CODE.get(code, TracklaneError)


def from_rpc_error(err: grpc.RpcError) -> TracklaneError:
    """Turns a failed gRPC call into the matching typed error, with field and reason from details."""
    code: grpc.StatusCode = err.code() if isinstance(err, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = (err.details() if isinstance(err, grpc.Call) else None) or str(code.name).lower()
    field = reason = ""
    status = rpc_status.from_call(err) if isinstance(err, grpc.Call) else None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                if bad_request.field_violations:
                    field = bad_request.field_violations[0].field
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
    return error_for_code(code)(message, field=field, reason=reason)


def from_item_error(code: int, message: str, field: str = "") -> TracklaneError:
    """The typed error for a per-item refusal (``tracklane.v1.ItemError``) inside a stream."""
    try:
        status_code = next(c for c in grpc.StatusCode if c.value[0] == code)
    except StopIteration:
        status_code = grpc.StatusCode.UNKNOWN
    return error_for_code(status_code)(message, field=field)


def _pack(message: error_details_pb2.BadRequest | error_details_pb2.ErrorInfo) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
