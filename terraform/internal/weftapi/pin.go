package weftapi

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// CAHashPattern is the form of a CA pin: `sha256:` and 64 hex digits (protocol/src/ca-pin.ts).
const CAHashPattern = `^sha256:[0-9a-fA-F]{64}$`

var caHashRE = regexp.MustCompile(CAHashPattern)

// ValidCAHash reports whether s has the form of a CA pin.
func ValidCAHash(s string) bool { return caHashRE.MatchString(s) }

// SPKIHash is the pin of a certificate: `sha256:` and the hex SHA-256 of its DER
// SubjectPublicKeyInfo, as the controller prints it and the CLI computes it.
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PinMismatchError: the controller presented a chain the pin does not vouch for. Not retryable.
type PinMismatchError struct {
	// Presented are the pins of every certificate presented, leaf first.
	Presented []string
	Reason    string
}

func (e *PinMismatchError) Error() string {
	got := "no certificate"
	if n := len(e.Presented); n > 0 {
		got = e.Presented[n-1]
	}
	detail := ""
	if e.Reason != reasonNoPin {
		detail = ": it presents the pinned CA but its certificate is not signed by it"
	}
	return fmt.Sprintf("controller certificate does not match ca_hash%s (got %s); check the pin in the controller's <state-dir>/tls/ca.hash or from `weft keys create`", detail, got)
}

const (
	reasonNoPin     = "no certificate with the pinned hash"
	reasonNotSigned = "the leaf is not signed by the pinned CA"
)

// pinnedTLS returns a TLS configuration that trusts exactly the CA with SPKI hash `pin`, the way
// the CLI pins it (protocol/src/ca-pin.ts): the pinned certificate must be in the chain the server
// presents, every link from the leaf up to it must be signed by the next, and the leaf must then
// verify against that CA alone, host name included. The check runs inside the handshake, so a
// wrong pin or a man in the middle fails before any request byte (and the admin token) is sent.
func pinnedTLS(host, pin string, now func() time.Time) *tls.Config {
	want := strings.ToLower(pin)
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: host,
		// The standard verification is replaced, not skipped: VerifyConnection does it against
		// the pinned CA (Go's verification would use the system's CAs, which never know it).
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs.PeerCertificates, host, want, now())
		},
	}
}

func verifyPinned(chain []*x509.Certificate, host, pin string, now time.Time) error {
	pins := make([]string, len(chain))
	for i, c := range chain {
		pins[i] = SPKIHash(c)
	}
	at := slices.Index(pins, pin)
	if at < 0 {
		return &PinMismatchError{Presented: pins, Reason: reasonNoPin}
	}
	for i := 0; i < at; i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return &PinMismatchError{Presented: pins, Reason: reasonNotSigned}
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(chain[at])
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:at] {
		intermediates.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, DNSName: host, CurrentTime: now})
	if err != nil {
		return fmt.Errorf("controller certificate does not verify against the pinned CA: %w", err)
	}
	return nil
}
