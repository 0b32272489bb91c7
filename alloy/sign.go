package alloy

import (
	"crypto/ed25519"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Payload types of the PAE bytes each signature covers. Each kind of
// signed record has its own, so a signature over one can never be replayed
// as another.
const (
	PayloadStage   = "continuum/alloy-stage/v1"
	PayloadProof   = "continuum/alloy-proof/v1"
	PayloadVerdict = "continuum/alloy-verdict/v1"
)

// PAE is DSSE's pre-authentication encoding: "DSSEv1", then the payload
// type and the body, each preceded by its length in decimal, separated by
// single spaces. The lengths make the split unambiguous: no body can be
// read as another type's.
func PAE(payloadType string, body []byte) []byte {
	out := make([]byte, 0, len(body)+len(payloadType)+32)
	out = append(out, "DSSEv1 "...)
	out = strconv.AppendInt(out, int64(len(payloadType)), 10)
	out = append(out, ' ')
	out = append(out, payloadType...)
	out = append(out, ' ')
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, ' ')
	return append(out, body...)
}

// Signer signs alloy records. The kernel's identity satisfies it; so does
// KeySigner.
type Signer interface {
	PeerID() string
	Sign(msg []byte) []byte
}

// KeySigner signs with an Ed25519 private key.
type KeySigner ed25519.PrivateKey

// PeerID is the key's peer id.
func (k KeySigner) PeerID() string {
	return PeerIDOf(ed25519.PrivateKey(k).Public().(ed25519.PublicKey))
}

// Sign signs msg.
func (k KeySigner) Sign(msg []byte) []byte { return ed25519.Sign(ed25519.PrivateKey(k), msg) }

// Peer ids are self-certifying, as in the daemon (kernel/identity, which
// this package must not import): "c" followed by the lowercase, unpadded
// base32 of the 32-byte public key. A test in the alloy service pins that
// the two agree.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// PeerIDOf returns the peer id of an Ed25519 public key.
func PeerIDOf(pub ed25519.PublicKey) string { return "c" + b32.EncodeToString(pub) }

// PublicKeyOf recovers the public key of a peer id; only the one spelling
// PeerIDOf writes is accepted.
func PublicKeyOf(peerID string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(peerID, "c")
	if !ok || len(rest) != 52 {
		return nil, fmt.Errorf("%q is not a peer id (c followed by 52 base32 characters)", short(peerID))
	}
	raw, err := b32.DecodeString(rest)
	if err != nil || len(raw) != ed25519.PublicKeySize || PeerIDOf(raw) != peerID {
		return nil, fmt.Errorf("%q is not a peer id", short(peerID))
	}
	return raw, nil
}

var errBadSig = errors.New("signature does not verify")

// verifySig checks a base64 signature by peerID over PAE(typ, body).
func verifySig(peerID, sig, typ string, body []byte) error {
	pub, err := PublicKeyOf(peerID)
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("sig is not a base64 Ed25519 signature")
	}
	if !ed25519.Verify(pub, PAE(typ, body), raw) {
		return errBadSig
	}
	return nil
}

func sign(s Signer, typ string, body []byte) string {
	return base64.StdEncoding.EncodeToString(s.Sign(PAE(typ, body)))
}

// stageBody is the body a stage signature covers: the canonical bytes of
// {"header": the alloy's header, "stage": the stage without its sig}.
func stageBody(h Header, s Stage) ([]byte, error) {
	m, err := toMap(s)
	if err != nil {
		return nil, err
	}
	delete(m, "sig")
	return canonical(map[string]any{"header": h, "stage": m})
}

// AddStage appends s to the chain, signed by signer: it fills prevHash, the
// executor, and inputHash from the stage before when s leaves it empty, and
// the outputHash from s.Outputs when s has a manifest and no hash.
func (a *Alloy) AddStage(s Stage, signer Signer) error {
	if a.Version == 0 {
		a.Version = Version
	}
	s.PrevHash = ZeroHash
	if n := len(a.Stages); n > 0 {
		h, err := StageHash(&a.Stages[n-1])
		if err != nil {
			return err
		}
		s.PrevHash = h
		if s.InputHash == "" {
			s.InputHash = a.Stages[n-1].OutputHash
		}
	}
	if len(s.Outputs) > 0 {
		m, err := NewManifest(s.Outputs)
		if err != nil {
			return err
		}
		s.Outputs = m
		if s.OutputHash == "" {
			if s.OutputHash, err = ManifestHash(m); err != nil {
				return err
			}
		}
	}
	if s.Config.Requested == nil {
		s.Config.Requested = map[string]any{}
	}
	s.Executor = signer.PeerID()
	body, err := stageBody(a.Header(), s)
	if err != nil {
		return err
	}
	s.Sig = sign(signer, PayloadStage, body)
	a.Stages = append(a.Stages, s)
	return nil
}

// proofBody is the body the proof signature covers: the header and the
// proof without its sig.
func proofBody(h Header, p Proof) ([]byte, error) {
	m, err := toMap(p)
	if err != nil {
		return nil, err
	}
	delete(m, "sig")
	return canonical(map[string]any{"header": h, "proof": m})
}

// SetProof attaches p, signed by signer as its author (Authorship.Signer is
// set to the signer's peer id).
func (a *Alloy) SetProof(p Proof, signer Signer) error {
	if a.Version == 0 {
		a.Version = Version
	}
	p.Authorship.Signer = signer.PeerID()
	body, err := proofBody(a.Header(), p)
	if err != nil {
		return err
	}
	p.Sig = sign(signer, PayloadProof, body)
	a.Proof = &p
	return nil
}

func short(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
