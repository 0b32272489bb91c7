package inference_test

import (
	"context"
	"testing"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/inference"
)

// Inference methods decode their params with kernel.Typed, as the built-ins
// do: a wrong type or a missing required field is invalid_argument naming the
// field, before the library is even looked for (none is here), and the daemon
// goes on serving.
func TestParamsThroughKernelTyped(t *testing.T) {
	_, c := startDaemon(t, inference.Options{LlamaLibDir: t.TempDir()})
	ctx := context.Background()
	for _, tc := range []struct {
		method string
		params any
		field  string
	}{
		{api.MethodInferenceLoad, map[string]any{"path": 5}, "path"},
		{api.MethodInferenceLoad, map[string]any{"name": "x"}, "path"},
		{api.MethodInferenceUnload, map[string]any{"name": []int{1}}, "name"},
		{api.MethodInferenceGenerate, map[string]any{"model": "m", "prompt": map[string]any{}}, "prompt"},
	} {
		err := c.Call(ctx, tc.method, tc.params, nil)
		wantCode(t, err, api.CodeInvalidArgument, tc.field)
	}
	if err := c.Call(ctx, api.MethodKernelPing, nil, nil); err != nil {
		t.Fatalf("ping after bad params: %v", err)
	}
}
