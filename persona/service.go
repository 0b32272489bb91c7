package persona

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/continuum-grid/continuum/kernel/identity"
)

// Class is the persona:responded declaration.
var Class = api.ClassConfig{
	Name:            api.EventPersonaResponded,
	Broadcast:       true,
	Channel:         api.ChannelByRoomID,
	SchemaVersion:   api.PersonaSchemaVersion,
	OnUnknownSchema: api.SchemaFail,
	Description:     "a persona answered a message: {personaId, roomId, replyTo, reply, alloyHash?, tokens, ms}; signed by the persona",
}

// DefaultMaxRepliesPerMessage is how many personas of this install may
// answer one message, when Options leave it 0.
const DefaultMaxRepliesPerMessage = 3

// Options configure the service.
type Options struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// MaxRepliesPerMessage caps the personas of this install that answer
	// one message (the reply cap gate); 0 is DefaultMaxRepliesPerMessage.
	MaxRepliesPerMessage int
}

// Service serves persona/* and runs one loop per persona.
type Service struct {
	k     *kernel.Kernel
	log   *slog.Logger
	st    *store
	keys  string // the folder of the personas' key files
	cap   int
	mu    sync.Mutex // serializes create/update/delete, guards runners
	run   map[string]*runner
	claim func(origin, id string) bool

	claimMu    sync.Mutex
	claims     map[string]int
	claimOrder []string
	closed     bool
}

// maxClaims bounds the reply-cap memory: the newest messages' counts.
const maxClaims = 4096

// Host creates the service, declares persona:responded, registers the
// persona/* methods on k and starts every stored persona's loop. Call it
// after kernel.Open (and after the chat service: personas post
// chat:posted) and before serving clients.
func Host(k *kernel.Kernel, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRepliesPerMessage <= 0 {
		opts.MaxRepliesPerMessage = DefaultMaxRepliesPerMessage
	}
	st, err := openStore(k.DB())
	if err != nil {
		return nil, fmt.Errorf("persona: open the entity bucket: %w", err)
	}
	s := &Service{k: k, log: opts.Logger, st: st, keys: filepath.Join(k.StateDir(), "personas"), cap: opts.MaxRepliesPerMessage,
		run: map[string]*runner{}, claims: map[string]int{}}
	s.claim = s.claimReply
	if err := os.MkdirAll(s.keys, 0o700); err != nil {
		return nil, fmt.Errorf("persona: key folder: %w", err)
	}
	for _, m := range []struct {
		name string
		fn   kernel.Service
	}{
		{api.MethodPersonaCreate, kernel.Typed(s.create)},
		{api.MethodPersonaList, kernel.Typed(s.list)},
		{api.MethodPersonaGet, kernel.Typed(s.get)},
		{api.MethodPersonaUpdate, kernel.Typed(s.update)},
		{api.MethodPersonaDelete, kernel.Typed(s.delete)},
		{api.MethodPersonaStatus, kernel.Typed(s.status)},
	} {
		spec, ok := api.Lookup(m.name)
		if !ok {
			return nil, fmt.Errorf("persona: %s is missing from api.Methods", m.name)
		}
		if err := k.Host(spec, m.fn); err != nil {
			return nil, err
		}
	}
	s.declare()
	all, err := st.list()
	if err != nil {
		return nil, fmt.Errorf("persona: read the personas: %w", err)
	}
	for _, p := range all {
		if err := s.startRunner(p); err != nil {
			// One persona whose key is gone must not keep the others down.
			s.log.Error("persona not started", "persona", p.Name, "id", p.ID, "err", err)
		}
	}
	return s, nil
}

func (s *Service) declare() {
	sess, err := s.k.Open(nopPeer{}, api.Caller{Transport: "inproc", UID: -1, GID: -1, PID: -1})
	if err != nil {
		s.log.Warn("cannot declare persona:responded", "err", err)
		return
	}
	defer sess.Close()
	if _, err := sess.Handle(context.Background(), api.MethodDeclareClass, api.ValueParams{V: Class}); err != nil {
		s.log.Warn("cannot declare persona:responded; replies are posted without their records", "err", err)
	}
}

// Close stops every persona's loop (messages being answered stay unacked:
// the next start answers them). The daemon calls it before the kernel's
// Close.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	rs := make([]*runner, 0, len(s.run))
	for _, r := range s.run {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); r.close() }()
	}
	wg.Wait()
}

func (s *Service) keyPath(id string) string { return filepath.Join(s.keys, id+".key") }

func (s *Service) startRunner(p api.Persona) error {
	id, err := identity.LoadFile(s.keyPath(p.ID))
	if err != nil {
		return err
	}
	if id.PeerID() != p.ID {
		return fmt.Errorf("the key at %s is not persona %s's", s.keyPath(p.ID), p.ID)
	}
	r := newRunner(s, p, id)
	if err := r.start(); err != nil {
		return err
	}
	s.run[p.ID] = r
	return nil
}

// startCursor sets a new room's cursor to the log's head, so the persona
// answers what is posted from now on, also across a restart before its
// first message.
func (s *Service) startCursor(personaID, room string) error {
	l := s.k.Log()
	if err := l.Ack(durableName(personaID, room), l.Head()); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return l.Flush(ctx)
}

// claimReply counts a reply to (origin, id) against the reply cap.
func (s *Service) claimReply(origin, id string) bool {
	k := origin + "\x00" + id
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	n, seen := s.claims[k]
	if n >= s.cap {
		return false
	}
	if !seen {
		s.claimOrder = append(s.claimOrder, k)
		if len(s.claimOrder) > maxClaims {
			delete(s.claims, s.claimOrder[0])
			s.claimOrder = s.claimOrder[1:]
		}
	}
	s.claims[k] = n + 1
	return true
}

func (s *Service) release(origin, id string) {
	k := origin + "\x00" + id
	s.claimMu.Lock()
	if s.claims[k] > 0 {
		s.claims[k]--
	}
	s.claimMu.Unlock()
}

// find resolves an id or a name. s.mu must be held.
func (s *Service) find(ref string) (api.Persona, error) {
	if strings.TrimSpace(ref) == "" {
		return api.Persona{}, invalid("field \"id\" is blank: pass a persona's id or name")
	}
	if err := api.CheckName("id", ref, api.MaxChannelLen); err != nil {
		return api.Persona{}, err
	}
	all, err := s.st.list()
	if err != nil {
		return api.Persona{}, api.Errorf(api.CodeUnavailable, "read the personas: %v", err)
	}
	for _, p := range all {
		if p.ID == ref || strings.EqualFold(p.Name, ref) {
			return p, nil
		}
	}
	return api.Persona{}, api.Errorf(api.CodeNotFound, "no persona %q (continuum persona list shows them)", ref)
}

func (s *Service) create(_ context.Context, _ *kernel.Call, c api.PersonaCreateParams) (any, error) {
	now := time.Now().UnixMilli()
	p := api.Persona{Name: c.Name, Role: c.Role, Model: c.Model, SystemPrompt: c.SystemPrompt, Rooms: c.Rooms, Params: c.Params, CreatedAtMs: now, UpdatedAtMs: now}
	if err := checkPersona(&p); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, api.Errorf(api.CodeUnavailable, "continuumd is shutting down")
	}
	if _, err := s.find(p.Name); err == nil {
		return nil, api.Errorf(api.CodeAlreadyExists, "a persona named %q exists", p.Name)
	}
	id, path, err := s.newKey()
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "make the persona's key: %v", err)
	}
	p.ID = id.PeerID()
	for _, room := range p.Rooms {
		if err := s.startCursor(p.ID, room); err != nil {
			os.Remove(path)
			return nil, api.Errorf(api.CodeUnavailable, "start the persona's cursor on %q: %v", room, err)
		}
	}
	if err := s.st.put(&p, true); err != nil {
		os.Remove(path)
		s.dropCursors(p.ID, p.Rooms)
		return nil, storeErr(err)
	}
	if err := s.startRunner(p); err != nil {
		s.log.Error("persona created but not started", "persona", p.Name, "err", err)
		return nil, api.Errorf(api.CodeInternal, "persona %s is stored but its loop did not start: %v", p.Name, err)
	}
	s.log.Info("persona created", "persona", p.Name, "id", p.ID, "model", p.Model, "rooms", p.Rooms)
	return p, nil
}

// newKey makes a persona's identity in a temporary file and links it in
// under its peer id.
func (s *Service) newKey() (*identity.Identity, string, error) {
	tmp, err := os.MkdirTemp(s.keys, ".new-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	id, err := identity.CreateFile(filepath.Join(tmp, "key"))
	if err != nil {
		return nil, "", err
	}
	path := s.keyPath(id.PeerID())
	if err := os.Link(filepath.Join(tmp, "key"), path); err != nil {
		return nil, "", err
	}
	if d, err := os.Open(s.keys); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return id, path, nil
}

func (s *Service) dropCursors(id string, rooms []string) {
	for _, room := range rooms {
		_ = s.k.Log().DeleteCursor(durableName(id, room))
	}
}

func storeErr(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return err
	}
	return api.Errorf(api.CodeUnavailable, "store the persona: %v", err)
}

func (s *Service) list(context.Context, *kernel.Call, api.Empty) (any, error) {
	all, err := s.st.list()
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "read the personas: %v", err)
	}
	if all == nil {
		all = []api.Persona{}
	}
	return all, nil
}

func (s *Service) get(_ context.Context, _ *kernel.Call, p api.PersonaRefParams) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.find(p.ID)
}

func (s *Service) update(_ context.Context, _ *kernel.Call, u api.PersonaUpdateParams) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.find(u.ID)
	if err != nil {
		return nil, err
	}
	if u.Name != nil {
		p.Name = *u.Name
	}
	if u.Role != nil {
		p.Role = *u.Role
	}
	if u.Model != nil {
		p.Model = *u.Model
	}
	if u.SystemPrompt != nil {
		p.SystemPrompt = *u.SystemPrompt
	}
	if u.Rooms != nil {
		p.Rooms = u.Rooms
	}
	if u.Params != nil {
		p.Params = *u.Params
	}
	if err := checkPersona(&p); err != nil {
		return nil, err
	}
	p.UpdatedAtMs = time.Now().UnixMilli()
	if err := s.st.put(&p, false); err != nil {
		return nil, storeErr(err)
	}
	if r := s.run[p.ID]; r != nil {
		r.update(p)
	}
	return p, nil
}

func (s *Service) delete(_ context.Context, _ *kernel.Call, ref api.PersonaRefParams) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.find(ref.ID)
	if err != nil {
		return nil, err
	}
	if r := s.run[p.ID]; r != nil {
		r.close()
		delete(s.run, p.ID)
	}
	if _, err := s.st.delete(p.ID); err != nil {
		return nil, storeErr(err)
	}
	s.dropCursors(p.ID, p.Rooms)
	if err := os.Remove(s.keyPath(p.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("persona deleted, its key file stays", "persona", p.Name, "err", err)
	}
	s.log.Info("persona deleted", "persona", p.Name, "id", p.ID)
	return api.Empty{}, nil
}

func (s *Service) status(_ context.Context, _ *kernel.Call, p api.PersonaStatusParams) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []api.Persona
	if p.ID != "" {
		one, err := s.find(p.ID)
		if err != nil {
			return nil, err
		}
		ids = []api.Persona{one}
	} else {
		all, err := s.st.list()
		if err != nil {
			return nil, api.Errorf(api.CodeUnavailable, "read the personas: %v", err)
		}
		ids = all
	}
	out := make([]api.PersonaStatus, 0, len(ids))
	for _, q := range ids {
		if r := s.run[q.ID]; r != nil {
			out = append(out, r.status())
		} else {
			out = append(out, api.PersonaStatus{ID: q.ID, Name: q.Name, State: api.PersonaStopped, Skipped: map[string]uint64{}, Breaker: api.PersonaBreaker{State: api.BreakerClosed}})
		}
	}
	return out, nil
}

type nopPeer struct{}

func (nopPeer) Notify(string, any) error { return api.Errorf(api.CodeUnavailable, "no client") }

func (nopPeer) Call(context.Context, string, any) (api.Params, error) {
	return nil, api.Errorf(api.CodeUnavailable, "no client")
}
