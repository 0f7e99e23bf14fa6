package org.tracklane.client;

import com.google.rpc.BadRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import org.tracklane.v1.ItemError;

/**
 * A refusal from the server: the gRPC status code, its message and, for INVALID_ARGUMENT and friends,
 * the request field the server named. Subclasses per code, so callers catch {@link NotFound} etc.
 */
public class TracklaneException extends RuntimeException {
  private final Status.Code code;
  private final String field;

  public TracklaneException(Status.Code code, String message, String field, Throwable cause) {
    super(code + ": " + message + (field.isEmpty() ? "" : " (field " + field + ")"), cause);
    this.code = code;
    this.field = field;
  }

  /** The gRPC status code. */
  public Status.Code code() {
    return code;
  }

  /** The offending request field (from google.rpc.BadRequest), or "". */
  public String field() {
    return field;
  }

  /** NOT_FOUND. */
  public static final class NotFound extends TracklaneException {
    NotFound(String message, String field, Throwable cause) {
      super(Status.Code.NOT_FOUND, message, field, cause);
    }
  }

  /** ALREADY_EXISTS. */
  public static final class AlreadyExists extends TracklaneException {
    AlreadyExists(String message, String field, Throwable cause) {
      super(Status.Code.ALREADY_EXISTS, message, field, cause);
    }
  }

  /** INVALID_ARGUMENT. */
  public static final class InvalidArgument extends TracklaneException {
    InvalidArgument(String message, String field, Throwable cause) {
      super(Status.Code.INVALID_ARGUMENT, message, field, cause);
    }
  }

  /** FAILED_PRECONDITION. */
  public static final class FailedPrecondition extends TracklaneException {
    FailedPrecondition(String message, String field, Throwable cause) {
      super(Status.Code.FAILED_PRECONDITION, message, field, cause);
    }
  }

  /** UNAVAILABLE. */
  public static final class Unavailable extends TracklaneException {
    Unavailable(String message, String field, Throwable cause) {
      super(Status.Code.UNAVAILABLE, message, field, cause);
    }
  }

  static TracklaneException of(Status.Code code, String message, String field, Throwable cause) {
    return switch (code) {
      case NOT_FOUND -> new NotFound(message, field, cause);
      case ALREADY_EXISTS -> new AlreadyExists(message, field, cause);
      case INVALID_ARGUMENT -> new InvalidArgument(message, field, cause);
      case FAILED_PRECONDITION -> new FailedPrecondition(message, field, cause);
      case UNAVAILABLE -> new Unavailable(message, field, cause);
      default -> new TracklaneException(code, message, field, cause);
    };
  }

  /** Converts a grpc-java exception; any other runtime exception is returned unchanged. */
  public static RuntimeException from(RuntimeException e) {
    if (!(e instanceof StatusRuntimeException sre)) {
      return e;
    }
    String field = "";
    com.google.rpc.Status details = StatusProto.fromThrowable(sre);
    if (details != null) {
      for (com.google.protobuf.Any any : details.getDetailsList()) {
        if (any.is(BadRequest.class)) {
          try {
            BadRequest br = any.unpack(BadRequest.class);
            if (br.getFieldViolationsCount() > 0) {
              field = br.getFieldViolations(0).getField();
            }
          } catch (com.google.protobuf.InvalidProtocolBufferException ignored) {
            // Malformed details: the message still says what went wrong.
          }
        }
      }
    }
    String message = sre.getStatus().getDescription() == null ? "" : sre.getStatus().getDescription();
    return of(sre.getStatus().getCode(), message, field, sre);
  }

  static TracklaneException from(ItemError e) {
    return of(Status.fromCodeValue(e.getCode()).getCode(), e.getMessage(), e.getField(), null);
  }
}
