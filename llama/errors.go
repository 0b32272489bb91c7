package llama

import "errors"

// Code is the stable, machine-readable identity of an [Error]. Callers (the
// daemon's error catalogue) switch on codes, never on message text.
type Code string

// Error codes. The strings are the wire names the daemon reports.
const (
	CodeLibraryNotFound  Code = "llama_library_not_found" // the library folder or a file in it is missing
	CodeLibraryLoad      Code = "llama_library_load"      // dlopen or symbol lookup failed
	CodeABIMismatch      Code = "llama_abi_mismatch"      // the library reports other versions
	CodeAlreadyLoaded    Code = "llama_already_loaded"    // another folder was loaded in this process
	CodeGPUUnavailable   Code = "gpu_unavailable"         // no GPU device and CPU not allowed
	CodeInsufficientVRAM Code = "gpu_insufficient_memory" // the model would not fit on the GPU
	CodeModelInvalid     Code = "model_invalid"           // the GGUF file failed validation
	CodeModelLoad        Code = "model_load_failed"       // llama.cpp refused the model
	CodeContextCreate    Code = "context_create_failed"   // llama.cpp could not create a context
	CodePromptTooLong    Code = "prompt_too_long"         // the prompt does not fit the context
	CodeInvalidRequest   Code = "invalid_request"         // a malformed GenerateRequest
	CodeDecode           Code = "decode_failed"           // llama_decode returned an error
	CodeClosed           Code = "closed"                  // the model or context was closed
)

// Error is the error type of this package. errors.Is matches on Code, so
// errors.Is(err, ErrGPUUnavailable) holds for every gpu_unavailable error
// whatever its message.
type Error struct {
	Code Code
	Msg  string
	Err  error // underlying cause, if any
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// Sentinels for errors.Is.
var (
	ErrLibraryNotFound  = &Error{Code: CodeLibraryNotFound}
	ErrLibraryLoad      = &Error{Code: CodeLibraryLoad}
	ErrABIMismatch      = &Error{Code: CodeABIMismatch}
	ErrAlreadyLoaded    = &Error{Code: CodeAlreadyLoaded}
	ErrGPUUnavailable   = &Error{Code: CodeGPUUnavailable}
	ErrInsufficientVRAM = &Error{Code: CodeInsufficientVRAM}
	ErrModelInvalid     = &Error{Code: CodeModelInvalid}
	ErrModelLoad        = &Error{Code: CodeModelLoad}
	ErrContextCreate    = &Error{Code: CodeContextCreate}
	ErrPromptTooLong    = &Error{Code: CodePromptTooLong}
	ErrInvalidRequest   = &Error{Code: CodeInvalidRequest}
	ErrDecode           = &Error{Code: CodeDecode}
	ErrClosed           = &Error{Code: CodeClosed}
)

func newErr(code Code, msg string, cause error) *Error {
	return &Error{Code: code, Msg: msg, Err: cause}
}
