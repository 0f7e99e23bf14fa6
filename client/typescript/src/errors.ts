// gRPC statuses -> typed errors, so callers `instanceof NotFoundError` instead of comparing codes.
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { type Metadata, type ServiceError, status } from "@grpc/grpc-js";

import type { ItemError } from "./gen/tracklane/v1/common.js";

/** A refusal from the server: gRPC status code, message and the offending request field, if named. */
export class TracklaneError extends Error {
  override name = "TracklaneError";
  constructor(
    message: string,
    /** The gRPC status code (`status.NOT_FOUND`...). */
    readonly code: status,
    /** The request field the server named (from google.rpc.BadRequest), else "". */
    readonly field: string = "",
  ) {
    super(message);
  }
}
export class InvalidArgumentError extends TracklaneError { override name = "InvalidArgumentError"; }
export class NotFoundError extends TracklaneError { override name = "NotFoundError"; }
export class AlreadyExistsError extends TracklaneError { override name = "AlreadyExistsError"; }
export class FailedPreconditionError extends TracklaneError { override name = "FailedPreconditionError"; }
export class PermissionDeniedError extends TracklaneError { override name = "PermissionDeniedError"; }
export class UnauthenticatedError extends TracklaneError { override name = "UnauthenticatedError"; }
export class ResourceExhaustedError extends TracklaneError { override name = "ResourceExhaustedError"; }
export class UnavailableError extends TracklaneError { override name = "UnavailableError"; }

const BY_CODE: Partial<Record<status, typeof TracklaneError>> = {
  [status.INVALID_ARGUMENT]: InvalidArgumentError,
  [status.NOT_FOUND]: NotFoundError,
  [status.ALREADY_EXISTS]: AlreadyExistsError,
  [status.FAILED_PRECONDITION]: FailedPreconditionError,
  [status.PERMISSION_DENIED]: PermissionDeniedError,
  [status.UNAUTHENTICATED]: UnauthenticatedError,
  [status.RESOURCE_EXHAUSTED]: ResourceExhaustedError,
  [status.UNAVAILABLE]: UnavailableError,
};

/** The typed error for a code. */
export function errorFor(code: status, message: string, field = ""): TracklaneError {
  const Cls = BY_CODE[code] ?? TracklaneError;
  return new Cls(message, code, field);
}

/** Converts a grpc-js error to a TracklaneError; anything else is returned unchanged. */
export function fromServiceError(err: unknown): unknown {
  const e = err as Partial<ServiceError>;
  if (e === null || typeof e !== "object" || typeof e.code !== "number" || e.metadata === undefined) {
    return err;
  }
  return errorFor(e.code, e.details ?? e.message ?? "", fieldOf(e.metadata));
}

/** A refused stream item (StreamMetrics ack) as a TracklaneError. */
export function fromItemError(e: ItemError): TracklaneError {
  return errorFor(e.code as status, e.message, e.field);
}

const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";

// google.rpc.Status travels in `grpc-status-details-bin`; only BadRequest's first field violation
// is needed, so its three tiny messages are read with the wire reader instead of generated code.
function fieldOf(metadata: Metadata): string {
  const [raw] = metadata.get("grpc-status-details-bin");
  if (!(raw instanceof Uint8Array)) {
    return "";
  }
  try {
    for (const any of fields(raw, 3)) {
      const [typeUrl] = fields(any, 1);
      if (typeUrl !== undefined && new TextDecoder().decode(typeUrl) === BAD_REQUEST) {
        const [body] = fields(any, 2);
        const [violation] = body === undefined ? [] : fields(body, 1);
        const [field] = violation === undefined ? [] : fields(violation, 1);
        return field === undefined ? "" : new TextDecoder().decode(field);
      }
    }
  } catch {
    // Malformed details: the message still says what went wrong.
  }
  return "";
}

/** The length-delimited values of one field number in an encoded message. */
function fields(bytes: Uint8Array, fieldNo: number): Uint8Array[] {
  const reader = new BinaryReader(bytes);
  const out: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (no === fieldNo && wireType === 2) {
      out.push(reader.bytes());
    } else {
      reader.skip(wireType);
    }
  }
  return out;
}
