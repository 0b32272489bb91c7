package api

// Wire types of the chat/* methods (docs/CHAT.md). Chat is a flow in the
// airc log: a message is a chat:posted event on the channel named by its
// roomId, so it is signed, replicated and replayed like every broadcast
// event; chat/send and chat/history are conveniences over events/emit and
// events/replay that check the payload and shape the transcript.

// EventChatPosted is the class of a chat message (payload ChatPosted):
// broadcast, channel byRoomId, schemaVersion ChatSchemaVersion, unknown
// schemas fail. The daemon declares it at start.
const EventChatPosted = "chat:posted"

// ChatSchemaVersion is the schemaVersion of chat:posted.
const ChatSchemaVersion = "v1"

// Chat limits.
const (
	MaxChatTextLen     = 16 << 10 // bytes of one message's text
	MaxChatMentions    = 32       // mentions of one message
	MaxChatMentionLen  = 256      // bytes of one mention (a client or persona id)
	DefaultChatHistory = 50       // messages per chat/history page when limit is 0
	MaxChatHistory     = 500      // the most a chat/history page may ask for
)

// ChatPosted is the payload of a chat:posted event.
type ChatPosted struct {
	RoomID   string   `msgpack:"roomId" json:"roomId" api:"required" desc:"the room; it is the event's channel"`
	Text     string   `msgpack:"text" json:"text" api:"required" desc:"the message"`
	ReplyTo  string   `msgpack:"replyTo,omitempty" json:"replyTo,omitempty" desc:"id of the message this one answers"`
	Mentions []string `msgpack:"mentions,omitempty" json:"mentions,omitempty" desc:"ids of the clients or personas addressed"`
}

// ChatSendParams are the params of chat/send.
type ChatSendParams struct {
	RoomID   string   `msgpack:"roomId" json:"roomId" api:"required" desc:"the room (a channel name: at most 256 bytes, no control characters)"`
	Text     string   `msgpack:"text" json:"text" api:"required" desc:"the message: not blank, at most 16 KiB"`
	ReplyTo  string   `msgpack:"replyTo,omitempty" json:"replyTo,omitempty" desc:"id of the message this one answers"`
	Mentions []string `msgpack:"mentions,omitempty" json:"mentions,omitempty" desc:"ids of the clients or personas addressed (at most 32)"`
	ID       string   `msgpack:"id,omitempty" json:"id,omitempty" desc:"the message's event id; supply one to make a retry idempotent (as for events/emit)"`
}

// ChatHistoryParams are the params of chat/history.
type ChatHistoryParams struct {
	RoomID string  `msgpack:"roomId" json:"roomId" api:"required" desc:"the room"`
	Before *string `msgpack:"before,omitempty" json:"before,omitempty" desc:"page cursor (the next of the page before): older messages; omit for the newest page"`
	Limit  int     `msgpack:"limit,omitempty" json:"limit,omitempty" desc:"at most this many messages (max 500, default 50)"`
}

// ChatEntry is one message of a room's transcript, as chat/history returns it.
type ChatEntry struct {
	ID       string   `msgpack:"id" json:"id" desc:"the event id"`
	Sender   string   `msgpack:"sender" json:"sender" desc:"the client or persona that posted it"`
	Text     string   `msgpack:"text" json:"text" desc:"the message"`
	TS       int64    `msgpack:"ts" json:"ts" desc:"unix milliseconds at the origin"`
	Lamport  uint64   `msgpack:"lamport" json:"lamport" desc:"lamport time: the transcript's order"`
	Seq      uint64   `msgpack:"seq" json:"seq" desc:"this install's log position"`
	Origin   string   `msgpack:"origin" json:"origin" desc:"peer id of the install that first logged it"`
	ReplyTo  string   `msgpack:"replyTo,omitempty" json:"replyTo,omitempty" desc:"id of the message it answers"`
	Mentions []string `msgpack:"mentions,omitempty" json:"mentions,omitempty" desc:"ids it addresses"`
	Persona  string   `msgpack:"persona,omitempty" json:"persona,omitempty" desc:"the name of the persona that posted it: its signed continuum-persona header, on an event the persona signed as its own origin (sender = origin); empty for everyone else"`
}

// ChatHistoryResult answers chat/history.
type ChatHistoryResult struct {
	Messages []ChatEntry `msgpack:"messages" json:"messages" desc:"messages in transcript (lamport, id) order, oldest first"`
	Next     *string     `msgpack:"next" json:"next" desc:"cursor for the page of older messages (pass it as before); nil at the start of the room"`
	// Cursor lets a client follow the room without a gap: subscribe to
	// chat:posted on the room from this seq, and skip ids already shown.
	Cursor uint64 `msgpack:"cursor" json:"cursor" desc:"the log head read before the page: subscribe from this seq to see every later message"`
}

// ChatEntryOf reads a chat:posted event as a transcript entry. A payload that
// is not a ChatPosted (an event emitted by hand with events/emit) gives what
// can be read of it: fields of the wrong type are left empty rather than
// failing a whole page of history.
func ChatEntryOf(ev *Event) ChatEntry {
	e := ChatEntry{ID: ev.ID, Sender: ev.Sender, TS: ev.TS, Lamport: ev.Lamport, Seq: ev.Seq, Origin: ev.Origin}
	// Only a persona signs as its own origin; a client that sets the header
	// on its own emit has the install as origin and its client id as sender.
	if name := ev.Headers[HeaderPersona]; name != "" && ev.Sender != "" && ev.Sender == ev.Origin {
		e.Persona = name
	}
	m := ev.PayloadMap()
	e.Text, _ = m["text"].(string)
	e.ReplyTo, _ = m["replyTo"].(string)
	switch ms := m["mentions"].(type) {
	case []any: // decoded from the wire or the log
		for _, x := range ms {
			if s, ok := x.(string); ok {
				e.Mentions = append(e.Mentions, s)
			}
		}
	case []string: // in process, as chat/send built it
		e.Mentions = append(e.Mentions, ms...)
	}
	return e
}
