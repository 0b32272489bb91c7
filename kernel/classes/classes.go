// Package classes is the event-class registry (docs/PROTOCOL.md, "Event classes"): validation of a
// declaration, idempotent redeclaration, channel resolution, and persistence of
// declarations in the state file so they survive restarts.
//
// Validate, Normalize, Equivalent and Resolve are pure functions; the Registry
// adds a concurrent map and a bbolt bucket around them.
package classes

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/continuum-grid/continuum/api"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// bucket holds one msgpack ClassConfig per class name.
var bucket = []byte("classes")

// Normalize fills defaults: channel local, onUnknownSchema fail.
func Normalize(c api.ClassConfig) api.ClassConfig {
	c.Name = strings.TrimSpace(c.Name)
	c.SchemaVersion = strings.TrimSpace(c.SchemaVersion)
	if c.Channel == "" {
		c.Channel = api.ChannelLocal
	}
	if c.OnUnknownSchema == "" {
		c.OnUnknownSchema = api.SchemaFail
	}
	return c
}

// Validate checks a normalized declaration, rule by rule in the order docs/PROTOCOL.md
// gives; each failure is invalid_argument naming the rule.
func Validate(c api.ClassConfig) error {
	if c.Name != "" {
		// Before anything that quotes the name: a 40 KB name must not
		// become a 40 KB error message.
		if err := api.CheckName("name", c.Name, api.MaxClassNameLen); err != nil {
			return err
		}
	}
	switch {
	case c.Name == "":
		return api.Errorf(api.CodeInvalidArgument, "class name is blank")
	case c.SchemaVersion == "":
		return api.Errorf(api.CodeInvalidArgument, "class %q: schemaVersion is blank", c.Name)
	case !slices.Contains(api.ChannelStrategies, c.Channel):
		return api.Errorf(api.CodeInvalidArgument, "class %q: unknown channel strategy %q (want one of local, global, byRoomId, byPeerId, custom)", c.Name, c.Channel)
	case c.OnUnknownSchema != api.SchemaFail && c.OnUnknownSchema != api.SchemaWarn:
		return api.Errorf(api.CodeInvalidArgument, "class %q: unknown onUnknownSchema %q (want warn or fail)", c.Name, c.OnUnknownSchema)
	case c.Broadcast && c.Channel == api.ChannelLocal:
		return api.Errorf(api.CodeInvalidArgument, "class %q: broadcast needs a channel (global, byRoomId, byPeerId or custom)", c.Name)
	case !c.Broadcast && c.Channel != api.ChannelLocal:
		return api.Errorf(api.CodeInvalidArgument, "class %q: channel %q needs broadcast: true", c.Name, c.Channel)
	}
	if len(c.SchemaVersion) > api.MaxSchemaVersionLen {
		return api.Errorf(api.CodeInvalidArgument, "class %q: schemaVersion is %d bytes long, over the limit of %d bytes", c.Name, len(c.SchemaVersion), api.MaxSchemaVersionLen)
	}
	return validName(c.Name)
}

// validName allows domain:collection:op style names: non-empty segments
// without whitespace or the wildcard.
func validName(name string) error {
	for _, seg := range strings.Split(name, ":") {
		if seg == "" {
			return api.Errorf(api.CodeInvalidArgument, "class %q: empty segment in name", name)
		}
		if seg == "*" || strings.ContainsAny(seg, " \t\r\n*") {
			return api.Errorf(api.CodeInvalidArgument, "class %q: name segments may not hold whitespace or *", name)
		}
	}
	return nil
}

// Equivalent reports whether two declarations make the same wire contract;
// the description does not count.
func Equivalent(a, b api.ClassConfig) bool {
	return a.Broadcast == b.Broadcast && a.Channel == b.Channel &&
		a.SchemaVersion == b.SchemaVersion && a.OnUnknownSchema == b.OnUnknownSchema
}

// Resolve returns the channel an event of class c with this payload goes to.
// explicit is the channel the emitter named (custom classes only).
func Resolve(c *api.ClassConfig, name string, payload map[string]any, explicit string) (string, error) {
	if c == nil {
		return "", api.Errorf(api.CodeUndeclaredClass, "class %q is not declared", name)
	}
	if !c.Broadcast {
		return "", api.Errorf(api.CodeNotBroadcast, "class %q is local: it has no channel", name)
	}
	switch c.Channel {
	case api.ChannelGlobal:
		return "global", nil
	case api.ChannelByRoomID:
		return payloadString(name, payload, "roomId")
	case api.ChannelByPeerID:
		return payloadString(name, payload, "peerId")
	case api.ChannelCustom:
		if explicit == "" {
			return "", api.Errorf(api.CodeMissingPayloadField, "class %q uses a custom channel: pass channel explicitly", name)
		}
		return explicit, nil
	}
	return "", api.Errorf(api.CodeInternal, "class %q has channel strategy %q", name, c.Channel)
}

func payloadString(class string, payload map[string]any, field string) (string, error) {
	s, ok := payload[field].(string)
	if !ok || s == "" {
		return "", api.Errorf(api.CodeMissingPayloadField, "class %q routes by %s: the payload needs a non-empty string %q", class, field, field)
	}
	return s, nil
}

// Registry holds the declared classes, mirrored in a bbolt bucket.
type Registry struct {
	db *bolt.DB
	mu sync.RWMutex
	m  map[string]api.ClassConfig
}

// Open loads the declarations stored in db.
func Open(db *bolt.DB) (*Registry, error) {
	r := &Registry{db: db, m: map[string]api.ClassConfig{}}
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var c api.ClassConfig
			if err := msgpack.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("class %q: %w", k, err)
			}
			r.m[string(k)] = c
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load event classes: %w", err)
	}
	return r, nil
}

// Declare validates c and stores it. Redeclaring an equivalent class returns
// the stored one (its first description stays); a different contract is
// conflicting_redeclaration.
func (r *Registry) Declare(c api.ClassConfig) (api.ClassConfig, error) {
	c = Normalize(c)
	if err := Validate(c); err != nil {
		return api.ClassConfig{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.m[c.Name]; ok {
		if Equivalent(old, c) {
			return old, nil
		}
		return api.ClassConfig{}, api.Errorf(api.CodeConflictingRedeclaration,
			"class %q is already declared as {broadcast:%t channel:%s schemaVersion:%s onUnknownSchema:%s}; bump schemaVersion to change it",
			c.Name, old.Broadcast, old.Channel, old.SchemaVersion, old.OnUnknownSchema).WithData(old)
	}
	b, err := msgpack.Marshal(&c)
	if err != nil {
		return api.ClassConfig{}, err
	}
	err = r.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(c.Name), b) })
	if err != nil {
		return api.ClassConfig{}, api.Errorf(api.CodeUnavailable, "store class %q: %v", c.Name, err)
	}
	r.m[c.Name] = c
	return c, nil
}

// Get returns a class, or nil when undeclared.
func (r *Registry) Get(name string) *api.ClassConfig {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.m[name]
	if !ok {
		return nil
	}
	// A copy made only when found: returning &c itself would move c to
	// the heap on every call, misses (every emit of a local class) included.
	found := c
	return &found
}

// List returns every class sorted by name.
func (r *Registry) List() []api.ClassConfig {
	r.mu.RLock()
	out := make([]api.ClassConfig, 0, len(r.m))
	for _, c := range r.m {
		out = append(out, c)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b api.ClassConfig) int { return strings.Compare(a.Name, b.Name) })
	return out
}
