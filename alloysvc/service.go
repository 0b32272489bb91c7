package alloysvc

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/alloy"
	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/kernel"
	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"
)

// Bucket holds the stored alloys: key the alloy hash (64 hex digits), value
// the storedAt (8 bytes, big-endian unix milliseconds) then the canonical
// bytes.
var Bucket = []byte("alloy/by-hash")

// List limits.
const (
	MaxArtifacts     = 1024 // per alloy/verify call
	DefaultListLimit = 100
	MaxListLimit     = 1000
	minPrefix        = 8
)

// Options configure the service.
type Options struct {
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Now stamps verdicts and stored alloys; nil means time.Now.
	Now func() time.Time
}

// Service serves the alloy/* methods. It is safe for concurrent use.
type Service struct {
	db     *bolt.DB
	signer alloy.Signer
	log    *slog.Logger
	now    func() time.Time
}

// Host creates the service on k's bbolt file and identity and registers the
// alloy/* methods. Call it after kernel.Open and before serving clients.
func Host(k *kernel.Kernel, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{db: k.DB(), signer: k.Identity(), log: opts.Logger, now: opts.Now}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(Bucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("alloysvc: bucket: %w", err)
	}
	for _, m := range []struct {
		name string
		fn   kernel.Service
	}{
		{api.MethodAlloyVerify, kernel.Typed(s.verify)},
		{api.MethodAlloyGet, kernel.Typed(s.get)},
		{api.MethodAlloyList, kernel.Typed(s.list)},
	} {
		spec, ok := api.Lookup(m.name)
		if !ok {
			return nil, fmt.Errorf("alloysvc: %s is missing from api.Methods", m.name)
		}
		if err := k.Host(spec, m.fn); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Put opens an alloy (its chain must hold) and stores it. It returns the
// alloy hash.
func (s *Service) Put(data []byte) (string, error) {
	a, err := alloy.Open(data)
	if err != nil {
		return "", err
	}
	canon, err := a.Marshal()
	if err != nil {
		return "", err
	}
	return s.store(canon)
}

func (s *Service) store(canon []byte) (string, error) {
	hash := alloy.HashBytes(canon)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(Bucket)
		if b.Get([]byte(hash)) != nil {
			return nil
		}
		v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(canon)), uint64(s.now().UnixMilli()))
		return b.Put([]byte(hash), append(v, canon...))
	})
	if err != nil {
		return "", fmt.Errorf("alloysvc: store: %w", err)
	}
	return hash, nil
}

// alloyBytes turns the wire form of an alloy (its JSON object as a map, or
// its JSON text) into JSON bytes for alloy.Verify, which canonicalizes and
// checks them; nothing here interprets a field.
func alloyBytes(v any) ([]byte, error) {
	if raw, ok := v.(msgpack.RawMessage); ok {
		// Fields of interface type arrive undecoded (api.DecodeParams).
		var x any
		if err := msgpack.Unmarshal(raw, &x); err != nil {
			return nil, api.Errorf(api.CodeInvalidArgument, `field "alloy": %v`, err)
		}
		v = x
	}
	switch x := v.(type) {
	case nil:
		return nil, api.Errorf(api.CodeInvalidArgument, `field "alloy" is missing`)
	case string:
		return []byte(x), nil
	case map[string]any, map[any]any:
		j, err := jsonable(x, 0)
		if err != nil {
			return nil, api.Errorf(api.CodeInvalidArgument, `field "alloy": %v`, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(j); err != nil {
			return nil, api.Errorf(api.CodeInvalidArgument, `field "alloy": %v`, err)
		}
		return buf.Bytes(), nil
	default:
		return nil, api.Errorf(api.CodeInvalidArgument, `field "alloy" is %T; want the alloy's JSON object or its text`, v)
	}
}

// jsonable checks a decoded msgpack value is JSON (string keys; no binary)
// and returns it as encoding/json can write it. Floats pass through, for
// the canonical encoder to refuse with its own reason.
func jsonable(v any, depth int) (any, error) {
	if depth > 64 {
		return nil, errors.New("nested deeper than 64")
	}
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("a map key is %T, not a string", k)
			}
			m[ks] = e
		}
		return jsonable(m, depth)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			j, err := jsonable(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = j
		}
		return m, nil
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			j, err := jsonable(e, depth+1)
			if err != nil {
				return nil, err
			}
			a[i] = j
		}
		return a, nil
	case []byte:
		return nil, errors.New("binary data is not JSON")
	default:
		return v, nil
	}
}

func (s *Service) verify(ctx context.Context, _ *kernel.Call, p api.AlloyVerifyParams) (any, error) {
	data, err := alloyBytes(p.Alloy)
	if err != nil {
		return nil, err
	}
	if len(p.Artifacts) > MaxArtifacts {
		return nil, api.Errorf(api.CodeInvalidArgument, "%d artifacts is over the limit of %d", len(p.Artifacts), MaxArtifacts)
	}
	opts := alloy.Options{Expect: p.Expect, Signer: s.signer, Now: s.now}
	for i, a := range p.Artifacts {
		switch {
		case a.Path != "" && len(a.Data) > 0:
			return nil, api.Errorf(api.CodeInvalidArgument, "artifacts[%d]: give path or data, not both", i)
		case a.Path == "" && a.Data == nil:
			return nil, api.Errorf(api.CodeInvalidArgument, "artifacts[%d]: give path or data", i)
		case a.Path != "" && !filepath.IsAbs(a.Path):
			return nil, api.Errorf(api.CodeInvalidArgument, "artifacts[%d]: path %q is not absolute (the daemon resolves paths on its own machine)", i, a.Path)
		}
		art := alloy.Artifact{Stage: a.Stage, Data: a.Data}
		if a.Path != "" {
			art.Path = filepath.Clean(a.Path)
		}
		opts.Artifacts = append(opts.Artifacts, art)
	}
	v, err := alloy.Verify(ctx, data, opts)
	if err != nil {
		var fe *alloy.FormatError
		if errors.As(err, &fe) {
			return nil, api.Errorf(api.CodeInvalidArgument, `field "alloy": %v`, err)
		}
		return nil, api.AsError(err)
	}
	out := wireVerdict(v)
	if v.Checks[0].Passed { // the chain holds: keep it
		if canon, err := alloy.Canonicalize(data); err == nil {
			if _, err := s.store(canon); err != nil {
				s.log.Warn("cannot store a verified alloy", "hash", v.AlloyHash, "err", err)
			} else {
				out.Stored = true
			}
		}
	}
	s.log.Debug("alloy verified", "hash", v.AlloyHash, "passed", v.Passed, "reason", v.Reason)
	return out, nil
}

func wireVerdict(v *alloy.Verdict) api.AlloyVerdict {
	out := api.AlloyVerdict{AlloyHash: v.AlloyHash, PolicyHash: v.PolicyHash, Passed: v.Passed, Reason: v.Reason,
		Verifier: v.Verifier, VerifiedAt: v.VerifiedAt, Sig: v.Sig, Checks: make([]api.AlloyCheck, 0, len(v.Checks))}
	for _, c := range v.Checks {
		wc := api.AlloyCheck{Kind: c.Kind, Name: c.Name, Stage: c.Stage, Metric: c.Metric, Passed: c.Passed, Reason: c.Reason, N: c.N, Median: c.Median, Samples: c.Samples}
		if c.Band != nil {
			wc.Band = &api.AlloyBand{Min: c.Band.Min, Max: c.Band.Max}
		}
		out.Checks = append(out.Checks, wc)
	}
	return out
}

func (s *Service) get(_ context.Context, _ *kernel.Call, p api.AlloyHashParams) (any, error) {
	h := strings.ToLower(strings.TrimSpace(p.Hash))
	if len(h) < minPrefix || len(h) > 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"hash\" %q is not an alloy hash or a prefix of at least %d hex digits", p.Hash, minPrefix)
	}
	var found [][]byte
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(Bucket).Cursor()
		for k, v := c.Seek([]byte(h)); k != nil && bytes.HasPrefix(k, []byte(h)) && len(found) < 2; k, v = c.Next() {
			found = append(found, slices.Clone(v))
			keys = append(keys, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "alloy store: %v", err)
	}
	switch len(found) {
	case 0:
		return nil, api.Errorf(api.CodeNotFound, "no alloy %s is stored here (alloy/list shows those that are)", p.Hash)
	case 2:
		return nil, api.Errorf(api.CodeInvalidArgument, "%s is the prefix of more than one alloy (%s…, %s…); give more digits", p.Hash, keys[0][:12], keys[1][:12])
	}
	sum, canon, err := summary(keys[0], found[0])
	if err != nil {
		return nil, err
	}
	g, err := alloy.Generic(canon)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "stored alloy %s: %v", keys[0], err)
	}
	return api.AlloyEntry{Summary: sum, Alloy: g}, nil
}

// summary decodes a stored record. Stored alloys were opened when stored,
// so this only reads fields.
func summary(hash string, rec []byte) (api.AlloySummary, []byte, error) {
	if len(rec) < 8 {
		return api.AlloySummary{}, nil, api.Errorf(api.CodeInternal, "stored alloy %s is truncated", hash)
	}
	canon := rec[8:]
	var a alloy.Alloy
	if err := json.Unmarshal(canon, &a); err != nil || len(a.Stages) == 0 {
		return api.AlloySummary{}, nil, api.Errorf(api.CodeInternal, "stored alloy %s does not decode: %v", hash, err)
	}
	last := a.Stages[len(a.Stages)-1]
	return api.AlloySummary{
		Hash: hash, Type: int(a.Type), TypeName: a.Type.String(), Domains: a.Domains, Stages: len(a.Stages),
		Last: last.Name, Executor: last.Executor, EndedAt: last.EndedAt,
		StoredAt: int64(binary.BigEndian.Uint64(rec[:8])),
	}, canon, nil
}

func (s *Service) list(_ context.Context, _ *kernel.Call, p api.AlloyListParams) (any, error) {
	if p.Limit < 0 || p.Limit > MaxListLimit {
		return nil, api.Errorf(api.CodeInvalidArgument, "field \"limit\" must be 0 to %d", MaxListLimit)
	}
	if p.Limit == 0 {
		p.Limit = DefaultListLimit
	}
	out := []api.AlloySummary{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(Bucket).ForEach(func(k, v []byte) error {
			sum, _, err := summary(string(k), v)
			if err != nil {
				s.log.Warn("skipping a stored alloy", "hash", string(k), "err", err)
				return nil
			}
			out = append(out, sum)
			return nil
		})
	})
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "alloy store: %v", err)
	}
	slices.SortStableFunc(out, func(a, b api.AlloySummary) int {
		if c := cmp.Compare(b.StoredAt, a.StoredAt); c != 0 {
			return c
		}
		return strings.Compare(a.Hash, b.Hash)
	})
	if len(out) > p.Limit {
		out = out[:p.Limit]
	}
	return out, nil
}
