package inference

import (
	"errors"
	"os"
	"strings"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/llama"
)

// libsHint ends every "libraries missing" message.
const libsHint = "run `make llama-libs` (CPU) or `make llama-libs-cuda`, or point --llama-lib-dir / $CONTINUUM_LLAMA_LIB_DIR at the folder"

// apiError maps an error of package llama (or a context error) to the
// catalogue. The llama code travels in the error's data as "reason".
func apiError(err error) error {
	if err == nil {
		return nil
	}
	var le *llama.Error
	if !errors.As(err, &le) {
		return api.AsError(err)
	}
	msg := le.Msg
	if le.Err != nil {
		msg += ": " + le.Err.Error()
	}
	var code api.Code
	switch le.Code {
	case llama.CodeGPUUnavailable:
		code = api.CodeGPUUnavailable
	case llama.CodeLibraryNotFound, llama.CodeLibraryLoad, llama.CodeABIMismatch, llama.CodeAlreadyLoaded:
		code = api.CodeUnavailable
		msg = "llama.cpp libraries unusable: " + msg
		if !strings.Contains(msg, "make llama-libs") {
			msg += "; " + libsHint
		}
	case llama.CodeModelInvalid:
		code = api.CodeInvalidArgument
		if errors.Is(err, os.ErrNotExist) {
			code = api.CodeNotFound
		}
	case llama.CodeModelLoad, llama.CodePromptTooLong, llama.CodeInvalidRequest:
		code = api.CodeInvalidArgument
	case llama.CodeInsufficientVRAM:
		code = api.CodeResourceExhausted
	case llama.CodeClosed:
		code = api.CodeUnavailable
	default: // context_create_failed, decode_failed
		code = api.CodeInternal
	}
	return (&api.Error{Code: code, Message: msg}).WithData(map[string]any{"reason": string(le.Code)})
}
