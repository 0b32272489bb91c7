package chat

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/kernel/airc"
)

// Class is the chat:posted declaration. Its wire contract (broadcast,
// channel, schemaVersion, onUnknownSchema) must stay what the README tour and
// docs/CLIENTS.md declare by hand, or their declarations become conflicts.
var Class = api.ClassConfig{
	Name:            api.EventChatPosted,
	Broadcast:       true,
	Channel:         api.ChannelByRoomID,
	SchemaVersion:   api.ChatSchemaVersion,
	OnUnknownSchema: api.SchemaFail,
	Description:     "a chat message: {roomId, text, replyTo?, mentions?} on the room's channel; sender: the client or persona that posted it (chat/send)",
}

// maxCursorLen bounds a before cursor: a replay cursor is a channel, an
// event id and a little framing, far below it.
const maxCursorLen = 1024

// Options configure the service.
type Options struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
}

// Service serves the chat/* methods. It holds no state of its own: the
// transcript is the log's.
type Service struct {
	k   *kernel.Kernel
	log *slog.Logger
}

// Host creates the service, declares chat:posted and registers chat/send and
// chat/history on k. Call it after kernel.Open and before serving clients.
// A class that cannot be declared (a full disk, or a conflicting
// declaration kept from an earlier run) is logged, not returned: the daemon
// must start, and chat/send then reports the emit's own error.
func Host(k *kernel.Kernel, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{k: k, log: opts.Logger}
	for _, m := range []struct {
		name string
		fn   kernel.Service
	}{
		{api.MethodChatSend, kernel.Typed(s.send)},
		{api.MethodChatHistory, kernel.Typed(s.history)},
	} {
		spec, ok := api.Lookup(m.name)
		if !ok {
			return nil, fmt.Errorf("chat: %s is missing from api.Methods", m.name)
		}
		if err := k.Host(spec, m.fn); err != nil {
			return nil, err
		}
	}
	s.declare()
	return s, nil
}

// declare declares Class through a session of the kernel's own, the way a
// client would, so that validation and persistence have one path.
func (s *Service) declare() {
	sess, err := s.k.Open(noPeer{}, api.Caller{Transport: "inproc", UID: -1, GID: -1, PID: -1})
	if err != nil {
		s.log.Warn("cannot declare chat:posted", "err", err)
		return
	}
	defer sess.Close()
	if _, err := sess.Handle(context.Background(), api.MethodDeclareClass, api.ValueParams{V: Class}); err != nil {
		s.log.Warn("cannot declare chat:posted; chat/send fails until it is", "err", err)
	}
}

func (s *Service) send(ctx context.Context, call *kernel.Call, p api.ChatSendParams) (any, error) {
	if err := checkRoom(p.RoomID); err != nil {
		return nil, err
	}
	if err := checkText(p.Text); err != nil {
		return nil, err
	}
	if p.ReplyTo != "" {
		if err := api.CheckName("replyTo", p.ReplyTo, api.MaxEventIDLen); err != nil {
			return nil, err
		}
	}
	if len(p.Mentions) > api.MaxChatMentions {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"mentions\" has %d entries, over the limit of %d", len(p.Mentions), api.MaxChatMentions)
	}
	for i, m := range p.Mentions {
		if err := api.CheckName(fmt.Sprintf("mentions[%d]", i), m, api.MaxChatMentionLen); err != nil {
			return nil, err
		}
	}
	// A map, not an api.ChatPosted: the kernel resolves a byRoomId channel
	// from a map payload, and the log stores the same shape either way.
	payload := map[string]any{"roomId": p.RoomID, "text": p.Text}
	if p.ReplyTo != "" {
		payload["replyTo"] = p.ReplyTo
	}
	if len(p.Mentions) > 0 {
		payload["mentions"] = p.Mentions
	}
	// Strict: should the class be missing (its declaration failed), the
	// message must not silently become a local event nobody logs.
	return s.k.Emit(ctx, call.ClientID, api.EmitParams{Name: api.EventChatPosted, ID: p.ID, Payload: payload, Strict: true})
}

func (s *Service) history(_ context.Context, _ *kernel.Call, p api.ChatHistoryParams) (any, error) {
	if err := checkRoom(p.RoomID); err != nil {
		return nil, err
	}
	before := airc.ReplayEnd
	if p.Before != nil {
		// A blank cursor is refused, not read as "the newest page": a
		// pager feeding an empty next back would loop forever.
		if strings.TrimSpace(*p.Before) == "" {
			return nil, api.Errorf(api.CodeInvalidArgument, "field \"before\" is a blank cursor: omit it for the newest page, or pass the next of the page before")
		}
		if len(*p.Before) > maxCursorLen {
			return nil, api.Errorf(api.CodeInvalidArgument, "field \"before\" is %d bytes long, over the limit of %d bytes: not a cursor chat/history gave", len(*p.Before), maxCursorLen)
		}
		before = *p.Before
	}
	if p.Limit < 0 || p.Limit > api.MaxChatHistory {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"limit\" is %d, outside 1..%d (0 for the default %d)", p.Limit, api.MaxChatHistory, api.DefaultChatHistory)
	}
	limit := p.Limit
	if limit == 0 {
		limit = api.DefaultChatHistory
	}
	// The head first: whatever is committed after it reaches a
	// subscription from it, whatever before it is in this page or older.
	head := s.k.Log().Head()
	events, next, err := s.k.Log().Replay(p.RoomID, "", before, limit)
	if err != nil {
		return nil, err
	}
	res := api.ChatHistoryResult{Messages: make([]api.ChatEntry, 0, len(events)), Cursor: head}
	for i := range events {
		if events[i].Class != api.EventChatPosted {
			continue
		}
		res.Messages = append(res.Messages, api.ChatEntryOf(&events[i]))
	}
	if next != "" {
		res.Next = &next
	}
	return res, nil
}

func checkRoom(room string) error {
	if strings.TrimSpace(room) == "" {
		return api.Errorf(api.CodeInvalidArgument, "field \"roomId\" is blank")
	}
	return api.CheckName("roomId", room, api.MaxChannelLen)
}

func checkText(text string) error {
	if strings.TrimSpace(text) == "" {
		return api.Errorf(api.CodeInvalidArgument, "field \"text\" is blank")
	}
	if len(text) > api.MaxChatTextLen {
		return api.Errorf(api.CodeInvalidArgument, "field \"text\" is %d bytes long, over the limit of %d bytes", len(text), api.MaxChatTextLen)
	}
	return nil
}

// noPeer is the declaring session's client: it never subscribes or serves
// commands, so nothing is ever sent to it.
type noPeer struct{}

func (noPeer) Notify(string, any) error { return api.Errorf(api.CodeUnavailable, "no client") }

func (noPeer) Call(context.Context, string, any) (api.Params, error) {
	return nil, api.Errorf(api.CodeUnavailable, "no client")
}
