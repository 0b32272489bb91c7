package llama

import (
	"fmt"
	"unsafe"
)

// The library build these bindings were written against: llama.cpp tag
// v0.4.0 as shipped by node-llama-cpp 3.21.1. Struct layouts below match it
// and nothing else; [Load] refuses any library that reports other versions.
const (
	PinnedLlamaVersion = "0.4.0-dev"
	PinnedGGMLVersion  = "0.23.0"
	PinnedGGMLCommit   = "5b4ebc5"
	// PinnedPackage names the npm release scripts/fetch-llama-libs.sh fetches.
	PinnedPackage = "node-llama-cpp 3.21.1"
)

// ABIVersions are the version strings a library reports.
type ABIVersions struct {
	Llama      string // llama_version()
	GGML       string // ggml_version()
	GGMLCommit string // ggml_commit()
}

func (v ABIVersions) String() string {
	return fmt.Sprintf("llama %s, ggml %s (commit %s)", v.Llama, v.GGML, v.GGMLCommit)
}

// PinnedABI is what [Load] expects.
var PinnedABI = ABIVersions{Llama: PinnedLlamaVersion, GGML: PinnedGGMLVersion, GGMLCommit: PinnedGGMLCommit}

// CheckABI compares the versions a library reports with the pinned ones.
// Every field must match exactly: struct layouts change between llama.cpp
// builds without any change of symbol names, so "close enough" would corrupt
// memory instead of failing.
func CheckABI(found ABIVersions) error {
	if found == PinnedABI {
		return nil
	}
	return &Error{Code: CodeABIMismatch, Msg: fmt.Sprintf(
		"llama.cpp library is %s; these bindings need %s (%s); run `make llama-libs` to fetch the pinned build",
		found, PinnedABI, PinnedPackage)}
}

// Go mirrors of the C structs, field for field (x86-64 / arm64 LP64). bool is
// a byte. Only fields this package sets are named for use; the rest are there
// for layout. Values always start from the library's own default-params
// function so fields the package does not know about keep their defaults.

// llama_model_params (80 bytes).
type modelParams struct {
	Devices                  uintptr
	TensorBuftOverrides      uintptr
	NGPULayers               int32
	SplitMode                int32
	LoadMode                 int32
	LazyMode                 int32
	MainGPU                  int32
	_                        int32 // padding
	TensorSplit              uintptr
	ProgressCallback         uintptr
	ProgressCallbackUserData uintptr
	KVOverrides              uintptr
	VocabOnly                bool
	CheckTensors             bool
	UseExtraBufts            bool
	NoHost                   bool
	NoAlloc                  bool
	LoadMTP                  bool
	_                        [2]byte
}

// llama_context_params (160 bytes).
type contextParams struct {
	NCtx              uint32
	NBatch            uint32
	NUBatch           uint32
	NSeqMax           uint32
	NRsSeq            uint32
	NOutputsMax       uint32
	NOutputsMaxPerSeq uint32
	NThreads          int32
	NThreadsBatch     int32
	CtxType           int32
	RopeScalingType   int32
	PoolingType       int32
	AttentionType     int32
	FlashAttnType     int32
	RopeFreqBase      float32
	RopeFreqScale     float32
	YarnExtFactor     float32
	YarnAttnFactor    float32
	YarnBetaFast      float32
	YarnBetaSlow      float32
	YarnOrigCtx       uint32
	DefragThold       float32
	CbEval            uintptr
	CbEvalUserData    uintptr
	TypeK             int32
	TypeV             int32
	AbortCallback     uintptr
	AbortCallbackData uintptr
	Embeddings        bool
	OffloadKQV        bool
	NoPerf            bool
	OpOffload         bool
	SwaFull           bool
	KVUnified         bool
	_                 [2]byte
	Samplers          uintptr
	NSamplers         uint64
	CtxOther          uintptr
}

// llama_batch (56 bytes).
type batch struct {
	NTokens int32
	_       int32
	Token   uintptr
	Embd    uintptr
	Pos     uintptr
	NSeqID  uintptr
	SeqID   uintptr
	Logits  uintptr
}

// llama_sampler_chain_params (1 byte).
type samplerChainParams struct {
	NoPerf bool
}

// llama_chat_message (16 bytes).
type chatMessage struct {
	Role    *byte
	Content *byte
}

// Sizes measured from the pinned library (docs/LLAMA.md, LLAMA-ABI.md).
const (
	sizeModelParams   = 80
	sizeContextParams = 160
	sizeBatch         = 56
)

// checkLayouts fails when a mirror's size drifts from the C struct's: a
// wrong size would make purego pass arguments in the wrong places.
func checkLayouts() error {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"llama_model_params", unsafe.Sizeof(modelParams{}), sizeModelParams},
		{"llama_context_params", unsafe.Sizeof(contextParams{}), sizeContextParams},
		{"llama_batch", unsafe.Sizeof(batch{}), sizeBatch},
		{"llama_sampler_chain_params", unsafe.Sizeof(samplerChainParams{}), 1},
		{"llama_chat_message", unsafe.Sizeof(chatMessage{}), 16},
	} {
		if c.got != c.want {
			return &Error{Code: CodeABIMismatch, Msg: fmt.Sprintf("Go mirror of %s is %d bytes, the pinned library's is %d", c.name, c.got, c.want)}
		}
	}
	return nil
}
