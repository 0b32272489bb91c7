package identity

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreatePersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	a, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	b, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.PeerID() != b.PeerID() {
		t.Fatalf("reload changed the peer id: %s then %s", a.PeerID(), b.PeerID())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("state dir holds %d entries, want only the key file", len(ents))
	}
}

func TestLoadRefusesLooseMode(t *testing.T) {
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644, 0o666} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreate(dir); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, KeyFileName)
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(dir)
			if err == nil {
				t.Fatal("a key file readable by others was accepted")
			}
			if !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("error does not say how to fix it: %v", err)
			}
		})
	}
}

func TestLoadRefusesGarbage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, KeyFileName), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir); err == nil {
		t.Fatal("garbage key file accepted")
	}
}

func TestPeerIDRoundTrip(t *testing.T) {
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	pid := id.PeerID()
	if len(pid) != PeerIDLen || !strings.HasPrefix(pid, "c") || strings.ToLower(pid) != pid {
		t.Fatalf("peer id %q: want \"c\" + 52 lowercase base32 characters", pid)
	}
	pub, err := PublicKeyOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub, id.PublicKey()) {
		t.Fatal("PublicKeyOf did not recover the key")
	}
}

func TestPublicKeyOfRefuses(t *testing.T) {
	id, _ := FromSeed(make([]byte, 32))
	good := id.PeerID()
	// The last character carries 1 key bit and 4 zero bits; flipping a
	// padding bit gives a second spelling of the same key.
	last := good[len(good)-1]
	idx := strings.IndexByte("abcdefghijklmnopqrstuvwxyz234567", last)
	alias := good[:len(good)-1] + string("abcdefghijklmnopqrstuvwxyz234567"[idx^1])
	cases := map[string]string{
		"empty":        "",
		"no prefix":    good[1:],
		"wrong prefix": "d" + good[1:],
		"short":        good[:len(good)-1],
		"long":         good + "a",
		"uppercase":    "c" + strings.ToUpper(good[1:]),
		"bad char":     good[:10] + "1" + good[11:],
		"alias":        alias,
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := PublicKeyOf(s); err == nil {
				t.Fatalf("PublicKeyOf(%q) accepted", s)
			}
			if Verify(s, []byte("m"), id.Sign([]byte("m"))) {
				t.Fatalf("Verify accepted peer id %q", s)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	a, _ := Generate()
	b, _ := Generate()
	msg := []byte("hello")
	sig := a.Sign(msg)
	tests := []struct {
		name string
		peer string
		msg  []byte
		sig  []byte
		want bool
	}{
		{"good", a.PeerID(), msg, sig, true},
		{"other key", b.PeerID(), msg, sig, false},
		{"other msg", a.PeerID(), []byte("hellO"), sig, false},
		{"short sig", a.PeerID(), msg, sig[:63], false},
		{"nil sig", a.PeerID(), msg, nil, false},
		{"flipped sig", a.PeerID(), msg, flip(sig), false},
	}
	for _, tc := range tests {
		if got := Verify(tc.peer, tc.msg, tc.sig); got != tc.want {
			t.Errorf("%s: Verify = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !bytes.Equal(a.Sign(msg), sig) {
		t.Error("Ed25519 signatures should be deterministic")
	}
}

func flip(b []byte) []byte {
	c := bytes.Clone(b)
	c[0] ^= 1
	return c
}

func TestRedaction(t *testing.T) {
	seed := bytes.Repeat([]byte{0xab}, 32)
	id, _ := FromSeed(seed)
	priv := ed25519.NewKeyFromSeed(seed)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("started", "identity", id)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s", id, id, id, id)
	if !strings.Contains(out, id.PeerID()) || !strings.Contains(buf.String(), "REDACTED") {
		t.Fatalf("log lacks the peer id or the redaction marker: %s", out)
	}
	for _, secret := range []string{fmt.Sprintf("%x", seed), fmt.Sprintf("%x", []byte(priv)), fmt.Sprint([]byte(priv)), "171 171 171"} {
		if strings.Contains(out, secret) {
			t.Fatalf("private key leaked: %s", out)
		}
	}
}

func TestCreateFileAndLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.key")
	a, err := CreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	b, err := LoadFile(path)
	if err != nil || b.PeerID() != a.PeerID() {
		t.Fatalf("LoadFile: %v %v", b, err)
	}
	if _, err := CreateFile(path); err == nil {
		t.Fatal("CreateFile replaced an existing key")
	}
	if c, _ := LoadFile(path); c.PeerID() != a.PeerID() {
		t.Fatal("the key changed")
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "none.key")); err == nil {
		t.Fatal("LoadFile of a missing file")
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("%d entries beside the key, want none (temp files left?)", len(ents)-1)
	}
}
