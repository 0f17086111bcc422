package flight

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors reach clients as gRPC statuses whose message reads like psql's
// ("ERROR:  permission denied for table t (SQLSTATE 42501)") and whose
// details hold an ErrorInfo with domain "postgresql", reason the SQLSTATE
// and metadata sqlstate, message, detail and hint.

// codeOf is the gRPC code of a SQLSTATE.
func codeOf(sqlstate string) codes.Code {
	switch {
	case sqlstate == "42501":
		return codes.PermissionDenied
	case strings.HasPrefix(sqlstate, "28"):
		return codes.Unauthenticated
	case sqlstate == "57014":
		return codes.Canceled
	case sqlstate == "0A000":
		return codes.Unimplemented
	case strings.HasPrefix(sqlstate, "53"):
		return codes.ResourceExhausted
	case strings.HasPrefix(sqlstate, "08"), strings.HasPrefix(sqlstate, "57P"):
		return codes.Unavailable
	case strings.HasPrefix(sqlstate, "42"), strings.HasPrefix(sqlstate, "22"), strings.HasPrefix(sqlstate, "23"),
		strings.HasPrefix(sqlstate, "26"), strings.HasPrefix(sqlstate, "3D"), strings.HasPrefix(sqlstate, "3F"),
		strings.HasPrefix(sqlstate, "2B"), strings.HasPrefix(sqlstate, "07"):
		return codes.InvalidArgument
	case strings.HasPrefix(sqlstate, "40"), strings.HasPrefix(sqlstate, "55"):
		return codes.Aborted
	}
	return codes.Internal
}

func withSQLState(code codes.Code, e *pgconn.PgError) error {
	msg := fmt.Sprintf("ERROR:  %s (SQLSTATE %s)", e.Message, e.Code)
	if e.Detail != "" {
		msg += "\nDETAIL:  " + e.Detail
	}
	if e.Hint != "" {
		msg += "\nHINT:  " + e.Hint
	}
	st := status.New(code, msg)
	md := map[string]string{"sqlstate": e.Code, "message": e.Message}
	if e.Detail != "" {
		md["detail"] = e.Detail
	}
	if e.Hint != "" {
		md["hint"] = e.Hint
	}
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: e.Code, Domain: "postgresql", Metadata: md}); err == nil {
		st = d
	}
	return st.Err()
}

// convError is a value that cannot be converted, with its SQLSTATE: one
// bulk ingest cannot load, or one of a result that its Arrow type cannot
// hold (22003, 22008, 0A000) or that is not text PostgreSQL prints for
// the type (22P02, 22007).
type convError struct{ sqlstate, msg string }

func (e *convError) Error() string { return e.msg }

func convErr(sqlstate, format string, args ...any) error {
	return &convError{sqlstate, fmt.Sprintf(format, args...)}
}

// toStatus turns any error into the status a client gets.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return withSQLState(codeOf(pgErr.Code), pgErr)
	}
	var ce *convError
	if errors.As(err, &ce) {
		// The message is the whole chain: the column and row it is in.
		return withSQLState(codeOf(ce.sqlstate), &pgconn.PgError{Severity: "ERROR", Code: ce.sqlstate, Message: err.Error()})
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the query was cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the query ran past its deadline")
	}
	return status.Error(codes.Internal, err.Error())
}
