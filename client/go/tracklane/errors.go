package tracklane

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "example.com/tracklane/client/go/tracklanev1"
)

// Sentinel errors, one per gRPC status code the server uses; test with errors.Is.
var (
	ErrInvalidArgument    = &codeError{codes.InvalidArgument}
	ErrNotFound           = &codeError{codes.NotFound}
	ErrAlreadyExists      = &codeError{codes.AlreadyExists}
	ErrFailedPrecondition = &codeError{codes.FailedPrecondition}
	ErrPermissionDenied   = &codeError{codes.PermissionDenied}
	ErrUnauthenticated    = &codeError{codes.Unauthenticated}
	ErrResourceExhausted  = &codeError{codes.ResourceExhausted}
	ErrUnavailable        = &codeError{codes.Unavailable}
	ErrUnimplemented      = &codeError{codes.Unimplemented}
	ErrInternal           = &codeError{codes.Internal}
)

// ErrStreamerClosed is returned by Streamer.Log after Close.
var ErrStreamerClosed = errors.New("tracklane: streamer is closed")

type codeError struct{ code codes.Code }

func (e *codeError) Error() string { return "tracklane: " + e.code.String() }

// Error is a refusal from the server: a gRPC status code, its message and, for INVALID_ARGUMENT
// and friends, the request field the server named (from google.rpc.BadRequest, else "").
type Error struct {
	Code    codes.Code
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("tracklane: %s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("tracklane: %s: %s", e.Code, e.Message)
}

// Is makes errors.Is(err, ErrNotFound) true for a NOT_FOUND refusal, and so on; a call cut by
// its context also matches context.DeadlineExceeded or context.Canceled.
func (e *Error) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	case context.Canceled:
		return e.Code == codes.Canceled
	}
	t, ok := target.(*codeError)
	return ok && t.code == e.Code
}

// GRPCStatus lets status.FromError and status.Code see the original code.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// Code returns the gRPC status code of err (codes.OK for nil, codes.Unknown for a non-gRPC error).
func Code(err error) codes.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return status.Code(err)
}

// wrap turns a gRPC error into *Error; nil stays nil, other errors are returned unchanged.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: st.Code(), Message: st.Message()}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			out.Field = br.GetFieldViolations()[0].GetField()
		}
	}
	return out
}

func fromItemError(e *pb.ItemError) *Error {
	return &Error{Code: codes.Code(e.GetCode()), Message: e.GetMessage(), Field: e.GetField()}
}
