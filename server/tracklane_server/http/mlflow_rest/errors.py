"""ONE mapping from a call's failure to MLflow's error body and HTTP status.

MLflow answers ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}`` with the status its
``ERROR_CODE_TO_HTTP_STATUS`` gives the code; the ``mlflow`` client raises ``MlflowException`` with
that code, and code written against MLflow branches on it (``RESOURCE_ALREADY_EXISTS`` when an
experiment exists...). Every status the servicers (through the error interceptor) or this adapter
produce passes through :func:`from_status` here.
"""

from __future__ import annotations

import grpc
import orjson
from starlette.responses import Response

from tracklane.exceptions import TracklaneError
from tracklane_server.http.call_context import HttpAbort

__all__ = ["MlflowError", "error_response", "from_abort", "from_tracklane", "invalid", "not_found"]

#: MLflow's ERROR_CODE_TO_HTTP_STATUS for the codes used here.
HTTP_STATUS = {
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "ABORTED": 409,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
}

#: gRPC status -> MLflow error code. FAILED_PRECONDITION (a deleted run, a version not READY) is
#: what MLflow reports as an invalid parameter: "The run must be in the 'active' state".
_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: "INVALID_PARAMETER_VALUE",
    grpc.StatusCode.OUT_OF_RANGE: "INVALID_PARAMETER_VALUE",
    grpc.StatusCode.FAILED_PRECONDITION: "INVALID_PARAMETER_VALUE",
    grpc.StatusCode.NOT_FOUND: "RESOURCE_DOES_NOT_EXIST",
    grpc.StatusCode.ALREADY_EXISTS: "RESOURCE_ALREADY_EXISTS",
    grpc.StatusCode.PERMISSION_DENIED: "PERMISSION_DENIED",
    grpc.StatusCode.UNAUTHENTICATED: "UNAUTHENTICATED",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED",
    grpc.StatusCode.UNAVAILABLE: "TEMPORARILY_UNAVAILABLE",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
    grpc.StatusCode.UNIMPLEMENTED: "NOT_IMPLEMENTED",
    grpc.StatusCode.ABORTED: "ABORTED",
    grpc.StatusCode.CANCELLED: "CANCELLED",
    grpc.StatusCode.DATA_LOSS: "DATA_LOSS",
}


class MlflowError(Exception):
    """An MLflow error code and message, answered with the code's HTTP status."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message

    @property
    def status(self) -> int:
        return HTTP_STATUS.get(self.error_code, 500)


def invalid(message: str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message)


def not_found(message: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", message)


def from_status(code: grpc.StatusCode, message: str) -> MlflowError:
    return MlflowError(_CODES.get(code, "INTERNAL_ERROR"), message)


def from_abort(abort: HttpAbort) -> MlflowError:
    """The status a call ended with (the error interceptor's, or a handler's abort)."""
    return from_status(abort.code, abort.details)


def from_tracklane(exc: TracklaneError) -> MlflowError:
    """A domain error raised before the call (bad credentials, a refused CSRF check)."""
    return from_status(exc.code, exc.message)


def error_response(error: MlflowError) -> Response:
    """MLflow's error body with the code's status (no WWW-Authenticate on 401: a browser would
    answer it with a password dialog, and the password here is a token)."""
    body = orjson.dumps({"error_code": error.error_code, "message": error.message})
    return Response(body, status_code=error.status, media_type="application/json")
