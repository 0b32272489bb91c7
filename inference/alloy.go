package inference

import (
	"strconv"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/alloy"
	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/llama"
)

// AlloyStore keeps the alloys of inference runs (the daemon's alloy service,
// package alloysvc). Put receives canonical alloy bytes.
type AlloyStore interface {
	Put(canonical []byte) (hash string, err error)
}

// StageGenerate is the name of the one stage of an inference run's alloy.
const StageGenerate = "generate"

// DomainInference is the domain of inference runs' alloys.
const DomainInference = "inference"

// digest is a model file's sha256, computed once per load (started in the
// background when the load ends, so neither the load nor the first
// generation waits for a large file to be read twice) and cached in its
// entry; a generation that ends before it is done waits for it.
type digest struct {
	once sync.Once
	sum  string
	err  error
}

func (e *entry) modelSHA256() (string, error) {
	e.digest.once.Do(func() { _, e.digest.sum, e.digest.err = alloy.HashFile(e.path) })
	return e.digest.sum, e.digest.err
}

// RequestedConfig is the requested config of an inference run's stage: the
// sampling parameters as asked for and the model file's sha256. A verifier
// that re-runs a generation passes its own as the expectation
// (alloy/verify's expect) so the two must match exactly.
func RequestedConfig(p api.GenerateParams, modelSHA256 string) map[string]any {
	r := map[string]any{
		"model":       modelSHA256,
		"maxTokens":   p.MaxTokens,
		"temperature": decimal(p.Temperature),
		"topP":        decimal(p.TopP),
		"input":       "prompt",
	}
	if len(p.Messages) > 0 {
		r["input"] = "messages"
	}
	if p.Seed != nil {
		r["seed"] = int64(*p.Seed)
	}
	if len(p.Stop) > 0 {
		stop := make([]any, len(p.Stop))
		for i, s := range p.Stop {
			stop[i] = s
		}
		r["stop"] = stop
	}
	return r
}

// PromptHash is an inference stage's inputHash: the sha256 of the prompt's
// bytes, or of the canonical JSON of the messages ([{role, content}]).
func PromptHash(p api.GenerateParams) (string, error) {
	if len(p.Messages) == 0 {
		return alloy.SHA256Hex([]byte(p.Prompt)), nil
	}
	b, err := alloy.Canonical(p.Messages)
	if err != nil {
		return "", err
	}
	return alloy.SHA256Hex(b), nil
}

// decimal writes a float as a decimal string: hashed data holds no floats.
func decimal(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// runAlloy makes the 0x06 alloy of one generation, signed by the install,
// stores it, and returns it as the generic object the result carries.
func (s *Service) runAlloy(e *entry, p api.GenerateParams, res llama.GenerateResult, started, ended time.Time) (any, error) {
	model, err := e.modelSHA256()
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "the model file %s cannot be hashed for the run's alloy: %v", e.path, err)
	}
	in, err := PromptHash(p)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, "messages: %v", err)
	}
	sampler := "greedy"
	if p.Temperature > 0 {
		sampler = "sampled"
	}
	a := &alloy.Alloy{Type: alloy.TypeEvaluation, Domains: []string{DomainInference}}
	err = a.AddStage(alloy.Stage{
		Name:      StageGenerate,
		InputHash: in,
		Config: alloy.Config{
			Requested: RequestedConfig(p, model),
			Chosen: map[string]any{
				"model":              e.name,
				"sampler":            sampler,
				"stopReason":         res.StopReason,
				"tokens":             len(res.Tokens),
				"promptTokens":       res.PromptTokens,
				"tokensPerSec":       strconv.FormatFloat(res.TokensPerSec, 'f', 3, 64),
				"timeToFirstTokenMs": strconv.FormatFloat(res.TimeToFirstTokenMs, 'f', 3, 64),
				"requestId":          p.RequestID,
			},
		},
		OutputHash: alloy.SHA256Hex([]byte(res.Text)),
		StartedAt:  started.UnixMilli(),
		EndedAt:    max(ended.UnixMilli(), started.UnixMilli()),
	}, s.k.Identity())
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "the run's alloy: %v", err)
	}
	canon, err := a.Marshal()
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "the run's alloy: %v", err)
	}
	if s.opts.Alloys != nil {
		if _, err := s.opts.Alloys.Put(canon); err != nil {
			s.log.Warn("cannot store the run's alloy", "err", err)
		}
	}
	return alloy.Generic(canon)
}
