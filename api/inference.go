package api

// Wire types of the inference/* methods (docs/INFERENCE.md). A
// model is named wherever a method takes one by a registered name or by the
// absolute path of a GGUF file on the daemon's machine.

// Event classes the inference service publishes (local, not logged).
const (
	// EventInferenceTokens carries one streamed token of a generation with
	// stream: true (payload TokenEvent); the sender is the calling client.
	EventInferenceTokens = "inference:tokens"
	// EventInferenceLoadProgress reports a model load's progress (payload
	// LoadProgressEvent); the sender is "inference".
	EventInferenceLoadProgress = "inference:load-progress"
)

// LoadModelParams are the params of inference/load.
type LoadModelParams struct {
	Path string `msgpack:"path" json:"path" api:"required" desc:"absolute path of a GGUF file on the daemon's machine"`
	Name string `msgpack:"name,omitempty" json:"name,omitempty" desc:"name to register the model under; default the path"`
}

// ModelInfo describes a loaded model.
type ModelInfo struct {
	NCtxTrain   int    `msgpack:"nCtxTrain" json:"nCtxTrain" desc:"context length the model was trained with"`
	NEmbd       int    `msgpack:"nEmbd" json:"nEmbd" desc:"embedding width"`
	NLayer      int    `msgpack:"nLayer" json:"nLayer" desc:"layer count"`
	NVocab      int    `msgpack:"nVocab" json:"nVocab" desc:"vocabulary size"`
	SizeBytes   uint64 `msgpack:"sizeBytes" json:"sizeBytes" desc:"bytes of tensor data"`
	Description string `msgpack:"description" json:"description" desc:"llama.cpp's one-line description"`
	OnGPU       bool   `msgpack:"onGpu" json:"onGpu" desc:"every layer runs on a GPU device (false: CPU, with --allow-cpu)"`
}

// LoadedModel is a model the daemon holds: the result of inference/load and
// an entry of inference/models.
type LoadedModel struct {
	Name string    `msgpack:"name" json:"name" desc:"the name it is registered under"`
	Path string    `msgpack:"path" json:"path" desc:"the GGUF file"`
	Info ModelInfo `msgpack:"info" json:"info" desc:"the model's metadata"`
	// Active and Queued are a snapshot, for operators.
	Active int `msgpack:"active" json:"active" desc:"generations running now"`
	Queued int `msgpack:"queued" json:"queued" desc:"generations waiting for a free context"`
}

// ChatMessage is one turn of a conversation for inference/generate.
type ChatMessage struct {
	Role    string `msgpack:"role" json:"role" api:"required" desc:"system, user or assistant"`
	Content string `msgpack:"content" json:"content" desc:"the turn's text"`
}

// GenerateParams are the params of inference/generate.
type GenerateParams struct {
	Model       string        `msgpack:"model" json:"model" api:"required" desc:"a loaded model's name, or the absolute path of a GGUF file (loaded on first use under its path)"`
	Prompt      string        `msgpack:"prompt,omitempty" json:"prompt,omitempty" desc:"raw prompt text; give prompt or messages"`
	Messages    []ChatMessage `msgpack:"messages,omitempty" json:"messages,omitempty" desc:"a conversation, formatted with the model's chat template (chatml when it has none)"`
	MaxTokens   int           `msgpack:"maxTokens,omitempty" json:"maxTokens,omitempty" desc:"most tokens to generate (default 256)"`
	Temperature float64       `msgpack:"temperature,omitempty" json:"temperature,omitempty" desc:"0 (default) is greedy and deterministic; above 0 samples"`
	TopP        float64       `msgpack:"topP,omitempty" json:"topP,omitempty" desc:"nucleus sampling threshold in (0, 1); 0 or 1 disables it"`
	Seed        *uint32       `msgpack:"seed,omitempty" json:"seed,omitempty" desc:"sampler seed; absent for a random one (ignored when greedy)"`
	Stop        []string      `msgpack:"stop,omitempty" json:"stop,omitempty" desc:"stop strings (at most 16 of at most 256 bytes); the text ends before the first match"`
	Stream      bool          `msgpack:"stream,omitempty" json:"stream,omitempty" desc:"also publish each token as an inference:tokens event (subscribe first)"`
	RequestID   string        `msgpack:"requestId,omitempty" json:"requestId,omitempty" desc:"id carried by the streamed events; generated when absent"`
}

// GenerateResult answers inference/generate.
type GenerateResult struct {
	Text               string  `msgpack:"text" json:"text" desc:"the generated text, valid UTF-8"`
	Tokens             []int32 `msgpack:"tokens" json:"tokens" desc:"generated token ids (end-of-generation excluded)"`
	PromptTokens       int     `msgpack:"promptTokens" json:"promptTokens" desc:"tokens in the prompt as the model saw it"`
	TokensPerSec       float64 `msgpack:"tokensPerSec" json:"tokensPerSec" desc:"decode rate: tokens after the first over the time from first to last"`
	TimeToFirstTokenMs float64 `msgpack:"timeToFirstTokenMs" json:"timeToFirstTokenMs" desc:"from the start of work (a context was free) to the first token"`
	StopReason         string  `msgpack:"stopReason" json:"stopReason" desc:"eog, max_tokens, stop or context_full"`
	RequestID          string  `msgpack:"requestId" json:"requestId" desc:"the request's id, as in its inference:tokens events"`
	Model              string  `msgpack:"model" json:"model" desc:"name of the model that ran it"`
	Alloy              any     `msgpack:"alloy" json:"alloy" desc:"the run's 0x06 alloy (docs/ALLOY.md), signed by this install: verify it with alloy/verify"`
}

// TokenEvent is the payload of an inference:tokens event: one generated
// token. A request's events carry indexes 0, 1, … in order; the last has
// index len(result.tokens)-1, and the pieces concatenate to result.text.
type TokenEvent struct {
	RequestID string `msgpack:"requestId" json:"requestId" desc:"the request it belongs to"`
	Index     int    `msgpack:"index" json:"index" desc:"0-based position among the generated tokens"`
	Token     int32  `msgpack:"token" json:"token" desc:"token id"`
	Piece     string `msgpack:"piece" json:"piece" desc:"text the token adds; may be empty while a UTF-8 character is incomplete"`
}

// LoadProgressEvent is the payload of an inference:load-progress event.
type LoadProgressEvent struct {
	Name     string  `msgpack:"name" json:"name" desc:"the model being loaded"`
	Progress float64 `msgpack:"progress" json:"progress" desc:"fraction done, 0 to 1; 1 once loaded"`
}
