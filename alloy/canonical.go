package alloy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/continuum-grid/continuum/alloy/jcs"
)

// canonical returns the RFC 8785 bytes of v: v goes through encoding/json
// only to reach the JCS parser, which re-reads it (refusing floats and
// duplicate names) and writes the canonical form, so encoding/json's own
// choices (HTML escaping, field order) never reach hashed bytes.
func canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("alloy: encode: %w", err)
	}
	out, err := jcs.Canonicalize(buf.Bytes(), jcs.Options{IntegersOnly: true})
	if err != nil {
		return nil, fmt.Errorf("alloy: canonical form: %w", err)
	}
	return out, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Marshal returns the canonical bytes of a: the bytes Hash covers and the
// form alloys are stored and exchanged in.
func (a *Alloy) Marshal() ([]byte, error) { return canonical(a) }

// Hash is the alloy hash: sha256 (hex) of its canonical bytes. It covers the
// header, every stage with its signature, and the proof.
func (a *Alloy) Hash() (string, error) {
	b, err := a.Marshal()
	if err != nil {
		return "", err
	}
	return sha256Hex(b), nil
}

// HashBytes is the alloy hash of canonical bytes as Marshal returns them.
func HashBytes(canonical []byte) string { return sha256Hex(canonical) }

// StageHash is what the next stage's prevHash holds: sha256 (hex) of the
// stage's canonical bytes, signature included.
func StageHash(s *Stage) (string, error) {
	b, err := canonical(s)
	if err != nil {
		return "", err
	}
	return sha256Hex(b), nil
}

// SHA256Hex is the hex sha256 of b: the output hash of a one-file output
// held in memory, and the prompt hash of an inference stage.
func SHA256Hex(b []byte) string { return sha256Hex(b) }

// Canonical returns the RFC 8785 integers-only bytes of any JSON-encodable
// value, for callers that hash their own records (a prompt's messages).
func Canonical(v any) ([]byte, error) { return canonical(v) }

// Generic returns canonical alloy bytes as the generic value a wire codec
// carries: maps, slices, strings, booleans, nil and int64 numbers.
func Generic(canonical []byte) (any, error) {
	v, err := jcs.Parse(canonical, jcs.Options{IntegersOnly: true})
	if err != nil {
		return nil, formatErr("%v", err)
	}
	return generic(v), nil
}

func generic(v any) any {
	switch v := v.(type) {
	case jcs.Number:
		n, _ := strconv.ParseInt(string(v), 10, 64) // IntegersOnly checked it
		return n
	case []any:
		for i := range v {
			v[i] = generic(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = generic(v[k])
		}
	}
	return v
}

// Canonicalize returns the canonical bytes of JSON alloy text (RFC 8785,
// integers only), the bytes whose sha256 is the alloy hash.
func Canonicalize(data []byte) ([]byte, error) {
	out, err := jcs.Canonicalize(data, jcs.Options{IntegersOnly: true})
	if err != nil {
		return nil, formatErr("%v", err)
	}
	return out, nil
}
