// Package identity holds this install's Ed25519 key and the peer ids derived
// from public keys (docs/GRID.md).
//
// A peer id is self-certifying: it is "c" followed by the lowercase, unpadded
// base32 (RFC 4648 alphabet) of the 32-byte public key, so the key can be
// recovered from the id alone (PublicKeyOf) and any peer can check an origin's
// signature without a key directory. Exactly one id spells each key: an id whose
// unused trailing bits are not zero is refused, so no one can make a second id
// for someone else's key and slip past dedupe by (origin, id).
//
// What it promises:
//   - LoadOrCreate makes the key on first start and stores it as a PKCS#8 PEM
//     file with mode 0600 (written to a temporary file, synced, then renamed, so
//     a crash never leaves half a key), and afterwards always loads that key.
//   - A key file that group or others may read or write is refused with a
//     message that says how to fix it; the key is never used from such a file.
//   - The private key never appears in logs or fmt output: Identity implements
//     slog.LogValuer and fmt.Stringer and shows only the peer id.
package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the key file inside the state directory.
const KeyFileName = "identity.key"

// PeerIDPrefix starts every peer id; it names the id scheme (Ed25519, base32)
// so another scheme can be added later without ambiguity.
const PeerIDPrefix = "c"

// PeerIDLen is the length of a peer id: the prefix plus 52 base32 characters.
const PeerIDLen = len(PeerIDPrefix) + 52

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Identity is an Ed25519 key pair and the peer id derived from its public key.
// It is safe for concurrent use.
type Identity struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	id   string
}

// Generate makes a fresh identity from crypto/rand, without storing it
// (personas and tests use it; the install's own key comes from LoadOrCreate).
func Generate() (*Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	return fromPrivate(priv), nil
}

// FromSeed builds the identity of a 32-byte Ed25519 seed (RFC 8032 private
// key). Golden test vectors use it; anything else should use LoadOrCreate.
func FromSeed(seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return fromPrivate(ed25519.NewKeyFromSeed(seed)), nil
}

func fromPrivate(priv ed25519.PrivateKey) *Identity {
	pub := priv.Public().(ed25519.PublicKey)
	return &Identity{priv: priv, pub: pub, id: PeerIDOf(pub)}
}

// LoadOrCreate loads the key file in dir, or makes a new key and stores it
// there (mode 0600) when there is none. dir is created 0700 if needed.
func LoadOrCreate(dir string) (*Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: state dir: %w", err)
	}
	path := filepath.Join(dir, KeyFileName)
	id, err := load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	id, err = Generate()
	if err != nil {
		return nil, err
	}
	if err := write(path, id.priv); err != nil {
		return nil, err
	}
	// Read back what is on disk: if another process created the key at the
	// same moment, both end up using the file that won the rename.
	return load(path)
}

// CreateFile makes a fresh identity and stores its key at path (mode
// 0600, written to a temporary file, synced, then linked into place). It
// fails if path exists: a key in use is never replaced. Services that hold
// identities of their own (personas) keep each in a file of its own.
func CreateFile(path string) (*Identity, error) {
	id, err := Generate()
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("identity: %s already exists", path)
	}
	if err := write(path, id.priv); err != nil {
		return nil, err
	}
	// write tolerates a key that appeared meanwhile (LoadOrCreate wants
	// that); here it means another identity holds the file.
	got, err := load(path)
	if err != nil {
		return nil, err
	}
	if got.id != id.id {
		return nil, fmt.Errorf("identity: %s already exists", path)
	}
	return got, nil
}

// LoadFile loads the key file at path (as LoadOrCreate does, with the same
// checks of its mode and contents), creating nothing.
func LoadFile(path string) (*Identity, error) { return load(path) }

func load(path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the mode checked is the mode of the
	// bytes read.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("identity: key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("identity: key file %s has mode %04o, which lets group or others use the install's private key; refusing it (fix: chmod 600 %s, and replace the key if others may have read it)", path, perm, path)
	}
	data, err := readAll(f, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("identity: read %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity: key file %s holds no PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: key file %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: key file %s holds a %T, want an Ed25519 key", path, k)
	}
	return fromPrivate(priv), nil
}

func readAll(f *os.File, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

func write(path string, priv ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("identity: encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, KeyFileName+".tmp*")
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	// CreateTemp makes the file 0600 already; Chmod states it and survives an
	// odd umask.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: write key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("identity: sync key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	// Link instead of rename: it fails if a key appeared meanwhile, so a key
	// that is already in use is never replaced.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("identity: store key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable; best effort on filesystems that refuse
		d.Close()
	}
	return nil
}

// PeerID is the self-certifying id of this identity's public key.
func (i *Identity) PeerID() string { return i.id }

// PublicKey returns the public key (a copy is not needed: callers must not
// modify it).
func (i *Identity) PublicKey() ed25519.PublicKey { return i.pub }

// Sign signs msg with the private key (Ed25519, deterministic: the same msg
// always gives the same signature).
func (i *Identity) Sign(msg []byte) []byte { return ed25519.Sign(i.priv, msg) }

// Signer is the private key as a crypto.Signer, for what must prove this
// identity through a standard library API (the grid's self-signed TLS
// certificate). It signs with the key; never log or store what it returns.
func (i *Identity) Signer() crypto.Signer { return i.priv }

// String shows the peer id only.
func (i *Identity) String() string { return "identity(" + i.id + ")" }

// GoString keeps %#v from printing the private key.
func (i *Identity) GoString() string { return i.String() }

// LogValue shows the peer id and redacts the private key.
func (i *Identity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("peerId", i.id), slog.String("privateKey", "REDACTED"))
}

// PeerIDOf is the peer id of an Ed25519 public key.
func PeerIDOf(pub ed25519.PublicKey) string {
	return PeerIDPrefix + b32.EncodeToString(pub)
}

// PublicKeyOf recovers the public key from a peer id. It refuses anything that
// PeerIDOf would not have produced, byte for byte.
func PublicKeyOf(peerID string) (ed25519.PublicKey, error) {
	if len(peerID) != PeerIDLen || !strings.HasPrefix(peerID, PeerIDPrefix) {
		return nil, fmt.Errorf("identity: %q is not a peer id (want %q and 52 base32 characters)", peerID, PeerIDPrefix)
	}
	raw, err := b32.DecodeString(peerID[len(PeerIDPrefix):])
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("identity: %q is not a peer id: bad base32", peerID)
	}
	pub := ed25519.PublicKey(raw)
	if PeerIDOf(pub) != peerID {
		// The last character carries one bit of the key and four padding bits;
		// nonzero padding would be a second spelling of the same key.
		return nil, fmt.Errorf("identity: %q is not a peer id: not in canonical form", peerID)
	}
	return pub, nil
}

// ValidPeerID reports whether s is a well-formed peer id.
func ValidPeerID(s string) bool {
	_, err := PublicKeyOf(s)
	return err == nil
}

// Verify reports whether sig is the Ed25519 signature of msg by the key that
// peerID names. A malformed peer id or signature is simply false.
func Verify(peerID string, msg, sig []byte) bool {
	pub, err := PublicKeyOf(peerID)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, msg, sig)
}
