package llama

import (
	"fmt"

	"github.com/ebitengine/purego"
)

// c holds the bound C functions. It is filled once, by the first successful
// [Load], and never changes afterwards (libraries cannot be unloaded).
var c struct {
	// libggml-base
	ggmlVersion           func() string
	ggmlCommit            func() string
	ggmlTypeSize          func(typ int32) uint64
	ggmlBlckSize          func(typ int32) int64
	ggmlBackendDevName    func(dev uintptr) string
	ggmlBackendDevDesc    func(dev uintptr) string
	ggmlBackendDevType    func(dev uintptr) int32
	ggmlBackendDevMemory  func(dev uintptr, free, total *uint64)
	ggmlBackendDevReg     func(dev uintptr) uintptr
	ggmlBackendRegName    func(reg uintptr) string
	ggmlBackendRegDevCnt  func(reg uintptr) uint64
	ggmlBackendLoadAllDir func(dir string)
	ggmlBackendLoad       func(path string) uintptr
	ggmlBackendDevCount   func() uint64
	ggmlBackendDevGet     func(i uint64) uintptr
	ggmlBackendRegCount   func() uint64
	ggmlBackendRegGet     func(i uint64) uintptr

	// libllama
	llamaVersion              func() string
	llamaBackendInit          func()
	llamaLogSet               func(cb, userData uintptr)
	llamaModelDefaultParams   func() modelParams
	llamaContextDefaultParams func() contextParams
	llamaModelLoadFromFile    func(path string, p modelParams) uintptr
	llamaModelFree            func(m uintptr)
	llamaModelGetVocab        func(m uintptr) uintptr
	llamaModelNCtxTrain       func(m uintptr) int32
	llamaModelNEmbd           func(m uintptr) int32
	llamaModelNLayer          func(m uintptr) int32
	llamaModelNHead           func(m uintptr) int32
	llamaModelNHeadKV         func(m uintptr) int32
	llamaModelDesc            func(m uintptr, buf *byte, size uint64) int32
	llamaModelSize            func(m uintptr) uint64
	llamaModelNParams         func(m uintptr) uint64
	llamaModelChatTemplate    func(m uintptr, name *byte) string
	llamaInitFromModel        func(m uintptr, p contextParams) uintptr
	llamaFree                 func(ctx uintptr)
	llamaNCtx                 func(ctx uintptr) uint32
	llamaNBatch               func(ctx uintptr) uint32
	llamaGetMemory            func(ctx uintptr) uintptr
	llamaMemoryClear          func(mem uintptr, data bool)
	llamaDecode               func(ctx uintptr, b batch) int32
	llamaVocabNTokens         func(v uintptr) int32
	llamaVocabIsEOG           func(v uintptr, tok int32) bool
	llamaVocabBOS             func(v uintptr) int32
	llamaVocabEOS             func(v uintptr) int32
	llamaTokenize             func(v uintptr, text *byte, textLen int32, toks *int32, nMax int32, addSpecial, parseSpecial bool) int32
	llamaTokenToPiece         func(v uintptr, tok int32, buf *byte, length int32, lstrip int32, special bool) int32
	llamaChatApplyTemplate    func(tmpl *byte, msgs *chatMessage, n uint64, addAssistant bool, buf *byte, length int32) int32
	llamaSamplerChainDefault  func() samplerChainParams
	llamaSamplerChainInit     func(p samplerChainParams) uintptr
	llamaSamplerChainAdd      func(chain, s uintptr)
	llamaSamplerInitGreedy    func() uintptr
	llamaSamplerInitDist      func(seed uint32) uintptr
	llamaSamplerInitTopP      func(p float32, minKeep uint64) uintptr
	llamaSamplerInitTemp      func(t float32) uintptr
	llamaSamplerSample        func(s, ctx uintptr, idx int32) int32
	llamaSamplerFree          func(s uintptr)
}

type binding struct {
	fptr any
	name string
}

// bindAll resolves every symbol before registering any, so a library that
// lacks one is reported by name instead of panicking inside purego.
func bindAll(lib uintptr, file string, bs []binding) error {
	syms := make([]uintptr, len(bs))
	for i, b := range bs {
		s, err := purego.Dlsym(lib, b.name)
		if err != nil || s == 0 {
			return newErr(CodeLibraryLoad, fmt.Sprintf("%s has no symbol %s (not the pinned %s build?)", file, b.name, PinnedPackage), err)
		}
		syms[i] = s
	}
	for i, b := range bs {
		purego.RegisterFunc(b.fptr, syms[i])
	}
	return nil
}

func ggmlBaseBindings() []binding {
	return []binding{
		{&c.ggmlVersion, "ggml_version"},
		{&c.ggmlCommit, "ggml_commit"},
		{&c.ggmlTypeSize, "ggml_type_size"},
		{&c.ggmlBlckSize, "ggml_blck_size"},
		{&c.ggmlBackendDevName, "ggml_backend_dev_name"},
		{&c.ggmlBackendDevDesc, "ggml_backend_dev_description"},
		{&c.ggmlBackendDevType, "ggml_backend_dev_type"},
		{&c.ggmlBackendDevMemory, "ggml_backend_dev_memory"},
		{&c.ggmlBackendDevReg, "ggml_backend_dev_backend_reg"},
		{&c.ggmlBackendRegName, "ggml_backend_reg_name"},
		{&c.ggmlBackendRegDevCnt, "ggml_backend_reg_dev_count"},
	}
}

func ggmlBindings() []binding {
	return []binding{
		{&c.ggmlBackendLoadAllDir, "ggml_backend_load_all_from_path"},
		{&c.ggmlBackendLoad, "ggml_backend_load"},
		{&c.ggmlBackendDevCount, "ggml_backend_dev_count"},
		{&c.ggmlBackendDevGet, "ggml_backend_dev_get"},
		{&c.ggmlBackendRegCount, "ggml_backend_reg_count"},
		{&c.ggmlBackendRegGet, "ggml_backend_reg_get"},
	}
}

func llamaBindings() []binding {
	return []binding{
		{&c.llamaVersion, "llama_version"},
		{&c.llamaBackendInit, "llama_backend_init"},
		{&c.llamaLogSet, "llama_log_set"},
		{&c.llamaModelDefaultParams, "llama_model_default_params"},
		{&c.llamaContextDefaultParams, "llama_context_default_params"},
		{&c.llamaModelLoadFromFile, "llama_model_load_from_file"},
		{&c.llamaModelFree, "llama_model_free"},
		{&c.llamaModelGetVocab, "llama_model_get_vocab"},
		{&c.llamaModelNCtxTrain, "llama_model_n_ctx_train"},
		{&c.llamaModelNEmbd, "llama_model_n_embd"},
		{&c.llamaModelNLayer, "llama_model_n_layer"},
		{&c.llamaModelNHead, "llama_model_n_head"},
		{&c.llamaModelNHeadKV, "llama_model_n_head_kv"},
		{&c.llamaModelDesc, "llama_model_desc"},
		{&c.llamaModelSize, "llama_model_size"},
		{&c.llamaModelNParams, "llama_model_n_params"},
		{&c.llamaModelChatTemplate, "llama_model_chat_template"},
		{&c.llamaInitFromModel, "llama_init_from_model"},
		{&c.llamaFree, "llama_free"},
		{&c.llamaNCtx, "llama_n_ctx"},
		{&c.llamaNBatch, "llama_n_batch"},
		{&c.llamaGetMemory, "llama_get_memory"},
		{&c.llamaMemoryClear, "llama_memory_clear"},
		{&c.llamaDecode, "llama_decode"},
		{&c.llamaVocabNTokens, "llama_vocab_n_tokens"},
		{&c.llamaVocabIsEOG, "llama_vocab_is_eog"},
		{&c.llamaVocabBOS, "llama_vocab_bos"},
		{&c.llamaVocabEOS, "llama_vocab_eos"},
		{&c.llamaTokenize, "llama_tokenize"},
		{&c.llamaTokenToPiece, "llama_token_to_piece"},
		{&c.llamaChatApplyTemplate, "llama_chat_apply_template"},
		{&c.llamaSamplerChainDefault, "llama_sampler_chain_default_params"},
		{&c.llamaSamplerChainInit, "llama_sampler_chain_init"},
		{&c.llamaSamplerChainAdd, "llama_sampler_chain_add"},
		{&c.llamaSamplerInitGreedy, "llama_sampler_init_greedy"},
		{&c.llamaSamplerInitDist, "llama_sampler_init_dist"},
		{&c.llamaSamplerInitTopP, "llama_sampler_init_top_p"},
		{&c.llamaSamplerInitTemp, "llama_sampler_init_temp"},
		{&c.llamaSamplerSample, "llama_sampler_sample"},
		{&c.llamaSamplerFree, "llama_sampler_free"},
	}
}
