package llama

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
)

// ChatMessage is one turn of a conversation.
type ChatMessage struct {
	Role    string // "system", "user", "assistant"
	Content string
}

// FallbackChatTemplate is the llama.cpp built-in template used when a model
// has no tokenizer.chat_template, or one that llama.cpp's template detector
// does not recognise: ChatML ("<|im_start|>role\ncontent<|im_end|>\n"), the
// most widely trained format. llama_chat_apply_template only pattern-matches
// known templates, it does not run Jinja.
const FallbackChatTemplate = "chatml"

// ApplyChatTemplate formats messages with the model's chat template (or
// [FallbackChatTemplate]) and, when addAssistant is set, opens the
// assistant's turn so generation continues as the assistant.
func (m *Model) ApplyChatTemplate(msgs []ChatMessage, addAssistant bool) (string, error) {
	if err := m.use(); err != nil {
		return "", err
	}
	defer m.done()
	return m.applyChatTemplate(msgs, addAssistant)
}

func (m *Model) applyChatTemplate(msgs []ChatMessage, addAssistant bool) (string, error) {
	if len(msgs) == 0 {
		return "", newErr(CodeInvalidRequest, "no chat messages", nil)
	}
	tmpl := m.info.ChatTemplate
	if tmpl == "" {
		tmpl = FallbackChatTemplate
	}
	out, ok := applyTemplate(tmpl, msgs, addAssistant)
	if !ok && tmpl != FallbackChatTemplate {
		if lg := logger.Load(); lg != nil {
			lg.Log(context.Background(), slog.LevelWarn, "model chat template not recognised by llama.cpp; using the fallback", "model", m.info.Path, "fallback", FallbackChatTemplate)
		}
		out, ok = applyTemplate(FallbackChatTemplate, msgs, addAssistant)
	}
	if !ok {
		return "", newErr(CodeInvalidRequest, fmt.Sprintf("llama.cpp could not apply chat template %q", FallbackChatTemplate), nil)
	}
	return out, nil
}

// applyTemplate calls llama_chat_apply_template. The C strings live in Go
// memory, NUL-terminated, kept alive until the call returns.
func applyTemplate(tmpl string, msgs []ChatMessage, addAssistant bool) (string, bool) {
	cstr := func(s string) *byte {
		b := make([]byte, len(s)+1)
		copy(b, s)
		return &b[0]
	}
	cm := make([]chatMessage, len(msgs))
	total := 0
	for i, msg := range msgs {
		cm[i] = chatMessage{Role: cstr(msg.Role), Content: cstr(msg.Content)}
		total += len(msg.Role) + len(msg.Content)
	}
	ct := cstr(tmpl)
	buf := make([]byte, 2*total+512)
	for range 2 {
		n := c.llamaChatApplyTemplate(ct, &cm[0], uint64(len(cm)), addAssistant, &buf[0], int32(len(buf)))
		runtime.KeepAlive(cm)
		runtime.KeepAlive(ct)
		if n < 0 {
			return "", false
		}
		if int(n) <= len(buf) {
			return string(buf[:n]), true
		}
		buf = make([]byte, n)
	}
	return "", false
}
