package api

import (
	"context"
	"errors"
	"fmt"
)

// Error is the error map of a MessagePack-RPC response: {code, message, data?}.
// Every error that crosses the wire is an *Error; errors.Is matches on Code.
type Error struct {
	Code    Code   `msgpack:"code" json:"code"`
	Message string `msgpack:"message" json:"message"`
	Data    any    `msgpack:"data,omitempty" json:"data,omitempty"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &api.Error{Code: api.CodeNotFound}) works across wrapping.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithData returns a copy of e carrying data (for example the peers considered).
func (e *Error) WithData(data any) *Error {
	c := *e
	c.Data = data
	return &c
}

// CodeOf returns the catalogue code of err: the code of a wrapped *Error,
// deadline_exceeded / cancelled for context errors, internal otherwise, and ""
// for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		return CodeCancelled
	}
	return CodeInternal
}

// AsError converts any error into the *Error sent on the wire.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeOf(err), Message: err.Error()}
}
