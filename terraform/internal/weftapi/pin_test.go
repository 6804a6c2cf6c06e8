package weftapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert, key}
}

// leaf issues a server certificate for ips, signed by ca.
func (ca testCA) leaf(t *testing.T, ips ...string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "weft-controller"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serve starts an HTTPS server presenting chain (leaf first) and counts the requests it gets.
func serve(t *testing.T, leaf tls.Certificate, chain ...*x509.Certificate) (string, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"id":300,"spiffeId":"spiffe://weft.internal/ns/a/sa/b"}]`))
	}))
	for _, c := range chain {
		leaf.Certificate = append(leaf.Certificate, c.Raw)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what these tests make
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, &hits
}

func TestPin_acceptsTheControllersCA(t *testing.T) {
	ca := newCA(t, "weft CA")
	url, hits := serve(t, ca.leaf(t, "127.0.0.1"), ca.cert)
	c, err := New(Options{Endpoint: url, CAHash: SPKIHash(ca.cert), Token: "t0ken-t0ken-t0ken"})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := c.ListIdentities(context.Background())
	if err != nil {
		t.Fatalf("ListIdentities with the right pin: got error %v, want none", err)
	}
	if len(ids) != 1 || ids[0].ID != 300 || hits.Load() != 1 {
		t.Fatalf("got %+v after %d requests, want one identity 300 after 1", ids, hits.Load())
	}
}

func TestPin_upperCaseHashIsTheSamePin(t *testing.T) {
	ca := newCA(t, "weft CA")
	url, _ := serve(t, ca.leaf(t, "127.0.0.1"), ca.cert)
	c, _ := New(Options{Endpoint: url, CAHash: "sha256:" + strings.ToUpper(strings.TrimPrefix(SPKIHash(ca.cert), "sha256:")), Token: "tok"})
	if _, err := c.ListIdentities(context.Background()); err != nil {
		t.Fatalf("got %v, want the pin compared case-insensitively", err)
	}
}

func TestPin_refusesAnotherCABeforeSendingAnything(t *testing.T) {
	ca, other := newCA(t, "weft CA"), newCA(t, "someone else")
	url, hits := serve(t, other.leaf(t, "127.0.0.1"), other.cert)
	c, _ := New(Options{Endpoint: url, CAHash: SPKIHash(ca.cert), Token: "secret-token"})
	_, err := c.ListIdentities(context.Background())
	var pin *PinMismatchError
	if !errors.As(err, &pin) || pin.Reason != reasonNoPin {
		t.Fatalf("got %v, want a PinMismatchError (%s)", err, reasonNoPin)
	}
	if !strings.Contains(err.Error(), SPKIHash(other.cert)) || !strings.Contains(err.Error(), "ca_hash") {
		t.Fatalf("message %q: want it to name ca_hash and the pin presented (%s)", err, SPKIHash(other.cert))
	}
	if hits.Load() != 0 {
		t.Fatalf("server got %d requests, want 0: nothing (no token) may be sent to a stranger", hits.Load())
	}
}

func TestPin_refusesALeafNotSignedByThePinnedCA(t *testing.T) {
	// A man in the middle can present the real CA certificate (it is public) beside its own leaf.
	ca, mitm := newCA(t, "weft CA"), newCA(t, "mitm")
	url, hits := serve(t, mitm.leaf(t, "127.0.0.1"), ca.cert)
	c, _ := New(Options{Endpoint: url, CAHash: SPKIHash(ca.cert), Token: "secret-token"})
	_, err := c.ListIdentities(context.Background())
	var pin *PinMismatchError
	if !errors.As(err, &pin) || pin.Reason != reasonNotSigned {
		t.Fatalf("got %v, want a PinMismatchError (%s)", err, reasonNotSigned)
	}
	if hits.Load() != 0 {
		t.Fatalf("server got %d requests, want 0", hits.Load())
	}
}

func TestPin_checksTheHostName(t *testing.T) {
	ca := newCA(t, "weft CA")
	url, hits := serve(t, ca.leaf(t, "192.0.2.1"), ca.cert) // a certificate for another address
	c, _ := New(Options{Endpoint: url, CAHash: SPKIHash(ca.cert), Token: "secret-token"})
	_, err := c.ListIdentities(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not verify against the pinned CA") {
		t.Fatalf("got %v, want a host name verification failure", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("server got %d requests, want 0", hits.Load())
	}
}

func TestPin_withoutAPinTheSystemCAsDecide(t *testing.T) {
	ca := newCA(t, "weft CA")
	url, hits := serve(t, ca.leaf(t, "127.0.0.1"), ca.cert)
	c, _ := New(Options{Endpoint: url, Token: "secret-token"})
	if _, err := c.ListIdentities(context.Background()); err == nil || hits.Load() != 0 {
		t.Fatalf("got err %v after %d requests, want a verification error and no request", err, hits.Load())
	}
}

func TestClient_refusesBadOptions(t *testing.T) {
	pin := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"no token", Options{Endpoint: "https://127.0.0.1:8080"}, "no admin token"},
		{"bad pin", Options{Endpoint: "https://127.0.0.1:8080", Token: "t", CAHash: "sha1:abc"}, "must be sha256:"},
		{"pin over http", Options{Endpoint: "http://127.0.0.1:8080", Token: "t", CAHash: pin}, "needs an https:// endpoint"},
		{"pin over the socket", Options{Endpoint: "unix:///run/api.sock", Token: "t", CAHash: pin}, "leave ca_hash out"},
		{"no scheme", Options{Endpoint: "127.0.0.1:8080", Token: "t"}, "must be https://"},
		{"a path", Options{Endpoint: "https://127.0.0.1:8080/v1", Token: "t"}, "no path"},
		{"ftp", Options{Endpoint: "ftp://127.0.0.1", Token: "t"}, "must be https://"},
	}
	for _, tc := range cases {
		_, err := New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestClient_carriesTheControllersRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(404)
		_, _ = w.Write([]byte(`{"error":"not_found","message":"no policy named \"x\""}`))
	}))
	t.Cleanup(srv.Close)
	c, _ := New(Options{Endpoint: srv.URL, Token: "tok"})
	_, err := c.GetPolicy(context.Background(), "x")
	if !IsNotFound(err) || !strings.Contains(err.Error(), `GET /v1/policies/x: 404 not_found: no policy named "x"`) {
		t.Fatalf("got %v, want the controller's 404 with its message", err)
	}
}

func TestClient_overTheUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[{"id":301,"spiffeId":"spiffe://weft.internal/ns/a/sa/c"}]`))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	c, err := New(Options{Endpoint: "unix://" + sock, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := c.ListIdentities(context.Background())
	if err != nil || len(ids) != 1 || ids[0].ID != 301 {
		t.Fatalf("got %+v, %v; want identity 301 over the socket", ids, err)
	}
}
