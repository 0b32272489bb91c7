package link

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/continuum-grid/continuum/kernel/identity"
)

// ALPN is the one application protocol a link speaks; a peer that offers
// anything else fails the TLS handshake.
const ALPN = "continuum/1"

// certificate is a self-signed X.509 certificate of the identity key. Its
// names and dates mean nothing to a peer: the peer checks only that the key
// in it is the key of the peer id it expects (TLS 1.3's CertificateVerify
// proves the other end holds that key), so it never needs renewing.
func certificate(id *identity.Identity) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.PeerID()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.PublicKey(), id.Signer())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("link: make certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.Signer()}, nil
}

// peerIDOfState is the peer id of the key in the other end's certificate.
func peerIDOfState(cs tls.ConnectionState) (string, error) {
	if len(cs.PeerCertificates) != 1 {
		return "", fmt.Errorf("want exactly one certificate, got %d", len(cs.PeerCertificates))
	}
	pub, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return "", fmt.Errorf("certificate key is %T, want Ed25519", cs.PeerCertificates[0].PublicKey)
	}
	return identity.PeerIDOf(pub), nil
}

// baseTLS is what both sides share: TLS 1.3 only, our ALPN, our certificate,
// and no resumption (a resumed session skips the certificate callbacks that
// do the pinning, so tickets are off and 0-RTT cannot happen).
func baseTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		NextProtos:             []string{ALPN},
		Certificates:           []tls.Certificate{cert},
		SessionTicketsDisabled: true,
	}
}

// errPinned is the dialler's refusal of a key other than the dialled one.
var errPinned = errors.New("link: the peer's key is not the dialled peer id")

// clientTLS pins want: the handshake fails unless the listener's certificate
// holds the key of that peer id. The chain is not checked against any CA
// (InsecureSkipVerify); VerifyConnection does the whole check instead.
func clientTLS(cert tls.Certificate, want string) *tls.Config {
	c := baseTLS(cert)
	c.InsecureSkipVerify = true
	c.ServerName = "continuum"
	c.ClientSessionCache = nil
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		got, err := peerIDOfState(cs)
		if err != nil {
			return fmt.Errorf("link: %w", err)
		}
		if got != want {
			return fmt.Errorf("%w: dialled %s, answered by %s", errPinned, want, got)
		}
		return nil
	}
	return c
}

// serverTLS asks every dialler for a certificate and lets admit decide on
// the peer id of its key; admit's error fails the handshake.
func serverTLS(cert tls.Certificate, admit func(peerID string) error) *tls.Config {
	c := baseTLS(cert)
	c.ClientAuth = tls.RequireAnyClientCert
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		got, err := peerIDOfState(cs)
		if err != nil {
			return fmt.Errorf("link: %w", err)
		}
		return admit(got)
	}
	return c
}
