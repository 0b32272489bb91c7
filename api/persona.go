package api

// Wire types of the persona/* methods (docs/PERSONAS.md). A persona is an
// entity (a row of the kernel's bbolt file) with an Ed25519 identity of its
// own: its id is the peer id of its key, and what it posts is signed by that
// key, so any peer verifies it as the persona's.

// EventPersonaResponded records one answer of a persona (payload
// PersonaResponded): broadcast, channel byRoomId, schemaVersion v1, signed by
// the persona. The persona service declares it at start.
const EventPersonaResponded = "persona:responded"

// PersonaSchemaVersion is the schemaVersion of persona:responded.
const PersonaSchemaVersion = "v1"

// HeaderPersona is set on every event a persona posts; its value is the
// persona's name, so a reader can show it without a lookup. It is inside
// the signed bytes: only the persona's key can have put it there.
const HeaderPersona = "continuum-persona"

// Persona limits.
const (
	MaxPersonas                = 256       // personas on one install
	MaxPersonaNameLen          = 64        // bytes of a name: letters, digits, '-', '_', '.'
	MaxPersonaRoleLen          = 256       // bytes of a role
	MaxPersonaModelLen         = 4096      // bytes of a model name or path
	MaxPersonaPromptLen        = 16 << 10  // bytes of a system prompt
	MaxPersonaRooms            = 32        // rooms of one persona
	MaxPersonaTokens           = 4096      // the most maxTokens a persona may ask for
	MaxPersonaContext          = 32 << 10  // the most contextTokens a persona may ask for
	MaxPersonaBreakerOpen      = 3_600_000 // the longest breakerOpenMs, 1 h
	MaxPersonaRepliesPerMinute = 600       // the most maxRepliesPerMinute
)

// PersonaParams tune a persona's loop. Zero fields take the defaults named
// in each description.
type PersonaParams struct {
	MaxTokens           int     `msgpack:"maxTokens,omitempty" json:"maxTokens,omitempty" desc:"most tokens of one reply (default 64, at most 4096)"`
	Temperature         float64 `msgpack:"temperature,omitempty" json:"temperature,omitempty" desc:"sampling temperature, 0 (default) greedy, at most 2"`
	ContextTokens       int     `msgpack:"contextTokens,omitempty" json:"contextTokens,omitempty" desc:"token budget of the system prompt and transcript given to the model (default 384, fits a 512-token context; each byte counts as a token, an upper bound)"`
	MaxRepliesPerMinute int     `msgpack:"maxRepliesPerMinute,omitempty" json:"maxRepliesPerMinute,omitempty" desc:"replies per room in any 60 s (default 6)"`
	MentionsOnly        bool    `msgpack:"mentionsOnly,omitempty" json:"mentionsOnly,omitempty" desc:"answer only messages that mention it (default false: also direct questions, messages ending in ?)"`
	Asleep              bool    `msgpack:"asleep,omitempty" json:"asleep,omitempty" desc:"read the rooms but answer nothing"`
	BreakerErrors       int     `msgpack:"breakerErrors,omitempty" json:"breakerErrors,omitempty" desc:"consecutive failed replies that open the circuit breaker (default 5)"`
	BreakerOpenMs       int     `msgpack:"breakerOpenMs,omitempty" json:"breakerOpenMs,omitempty" desc:"how long an open breaker pauses the persona before it tries again (default 30000)"`
}

// Persona is a persona entity.
type Persona struct {
	ID           string        `msgpack:"id" json:"id" desc:"the persona's peer id (of its own Ed25519 key): the sender and origin of what it posts"`
	Name         string        `msgpack:"name" json:"name" desc:"unique on this install; mention it as @name"`
	Role         string        `msgpack:"role" json:"role" desc:"a short description of its part"`
	Model        string        `msgpack:"model" json:"model" desc:"the model inference/generate runs for it (a loaded model's name or a GGUF path)"`
	SystemPrompt string        `msgpack:"systemPrompt" json:"systemPrompt" desc:"the system turn of every generation"`
	Rooms        []string      `msgpack:"rooms" json:"rooms" desc:"the rooms it reads and answers in"`
	Params       PersonaParams `msgpack:"params" json:"params" desc:"loop tuning"`
	CreatedAtMs  int64         `msgpack:"createdAtMs" json:"createdAtMs" desc:"unix ms of persona/create"`
	UpdatedAtMs  int64         `msgpack:"updatedAtMs" json:"updatedAtMs" desc:"unix ms of the last persona/update"`
}

// PersonaCreateParams are the params of persona/create.
type PersonaCreateParams struct {
	Name         string        `msgpack:"name" json:"name" api:"required" desc:"1 to 64 bytes of letters, digits, '-', '_', '.'; unique"`
	Role         string        `msgpack:"role,omitempty" json:"role,omitempty" desc:"a short description of its part (at most 256 bytes)"`
	Model        string        `msgpack:"model" json:"model" api:"required" desc:"a loaded model's name or the absolute path of a GGUF file"`
	SystemPrompt string        `msgpack:"systemPrompt,omitempty" json:"systemPrompt,omitempty" desc:"the system turn (at most 16 KiB); default names the persona and its role"`
	Rooms        []string      `msgpack:"rooms" json:"rooms" api:"required" desc:"1 to 32 rooms to read and answer in"`
	Params       PersonaParams `msgpack:"params,omitempty" json:"params,omitempty" desc:"loop tuning"`
}

// PersonaRefParams name one persona.
type PersonaRefParams struct {
	ID string `msgpack:"id" json:"id" api:"required" desc:"the persona's id or its name"`
}

// PersonaUpdateParams are the params of persona/update: fields left out keep
// their value.
type PersonaUpdateParams struct {
	ID           string         `msgpack:"id" json:"id" api:"required" desc:"the persona's id or its name"`
	Name         *string        `msgpack:"name,omitempty" json:"name,omitempty" desc:"a new name"`
	Role         *string        `msgpack:"role,omitempty" json:"role,omitempty" desc:"a new role"`
	Model        *string        `msgpack:"model,omitempty" json:"model,omitempty" desc:"a new model"`
	SystemPrompt *string        `msgpack:"systemPrompt,omitempty" json:"systemPrompt,omitempty" desc:"a new system prompt"`
	Rooms        []string       `msgpack:"rooms,omitempty" json:"rooms,omitempty" desc:"the new set of rooms; a room added is read from now on"`
	Params       *PersonaParams `msgpack:"params,omitempty" json:"params,omitempty" desc:"the new params, replacing the old as a whole"`
}

// PersonaStatusParams are the params of persona/status.
type PersonaStatusParams struct {
	ID string `msgpack:"id,omitempty" json:"id,omitempty" desc:"the persona's id or name; omit for every persona"`
}

// Persona loop states.
const (
	PersonaRunning     = "running"      // reading its rooms, answering what passes the gates
	PersonaAsleep      = "asleep"       // reading, answering nothing (params.asleep)
	PersonaBreakerOpen = "breaker_open" // paused after repeated failures
	PersonaStopped     = "stopped"      // not running (the daemon is stopping)
)

// Circuit breaker states.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half_open"
)

// PersonaBreaker is a persona's circuit breaker as persona/status shows it.
type PersonaBreaker struct {
	State       string `msgpack:"state" json:"state" desc:"closed, open or half_open"`
	Errors      int    `msgpack:"errors" json:"errors" desc:"consecutive failed replies"`
	Opened      int    `msgpack:"opened" json:"opened" desc:"times it has opened since the daemon started"`
	OpenUntilMs int64  `msgpack:"openUntilMs,omitempty" json:"openUntilMs,omitempty" desc:"unix ms when an open breaker lets one try through"`
}

// PersonaStatus is one persona's loop, as persona/status reports it.
type PersonaStatus struct {
	ID          string            `msgpack:"id" json:"id" desc:"the persona's id"`
	Name        string            `msgpack:"name" json:"name" desc:"its name"`
	State       string            `msgpack:"state" json:"state" desc:"running, asleep, breaker_open or stopped"`
	Queued      int               `msgpack:"queued" json:"queued" desc:"messages delivered to it and not yet handled"`
	Handled     uint64            `msgpack:"handled" json:"handled" desc:"messages read since the daemon started (answered or not)"`
	Answered    uint64            `msgpack:"answered" json:"answered" desc:"replies posted since the daemon started"`
	Skipped     map[string]uint64 `msgpack:"skipped" json:"skipped" desc:"messages not answered, by gate: own, not_addressed, rate_limited, reply_cap, asleep, answered_before"`
	Failed      uint64            `msgpack:"failed" json:"failed" desc:"messages whose reply failed"`
	LastError   string            `msgpack:"lastError,omitempty" json:"lastError,omitempty" desc:"the last failure"`
	LastErrorMs int64             `msgpack:"lastErrorMs,omitempty" json:"lastErrorMs,omitempty" desc:"unix ms of the last failure"`
	LastReplyMs int64             `msgpack:"lastReplyMs,omitempty" json:"lastReplyMs,omitempty" desc:"unix ms of the last reply"`
	Breaker     PersonaBreaker    `msgpack:"breaker" json:"breaker" desc:"the circuit breaker"`
}

// PersonaResponded is the payload of a persona:responded event.
type PersonaResponded struct {
	PersonaID string `msgpack:"personaId" json:"personaId" desc:"the persona"`
	RoomID    string `msgpack:"roomId" json:"roomId" desc:"the room (the event's channel)"`
	ReplyTo   string `msgpack:"replyTo" json:"replyTo" desc:"id of the message it answered"`
	Reply     string `msgpack:"reply" json:"reply" desc:"id of its chat:posted reply"`
	AlloyHash string `msgpack:"alloyHash,omitempty" json:"alloyHash,omitempty" desc:"hash of the generation's alloy, when the run made one"`
	Tokens    int    `msgpack:"tokens" json:"tokens" desc:"tokens generated"`
	Ms        int64  `msgpack:"ms" json:"ms" desc:"milliseconds the generation took (commands/execute inference/generate)"`
}
