// spiffe-probe: a SPIFFE Workload API client built on go-spiffe v2 (the reference client
// library), used by test/e2e/spiffe.test.ts inside lab workloads. Each subcommand prints one JSON
// object per result on stdout and exits non-zero on failure, with the error on stderr.
//
//	spiffe-probe fetch                       one X.509 context: SVID, chain verified against the bundle
//	spiffe-probe watch -updates N            stream X.509 contexts until N distinct SVIDs were seen
//	spiffe-probe jwt -audience A             a JWT-SVID for audience A
//	spiffe-probe validate -audience A -token T
//	spiffe-probe serve -listen :P -allow ID  mTLS server: accepts only the client ID, answers its ID
//	spiffe-probe dial -addr H:P -expect ID   mTLS client: accepts only the server ID
//
// The Workload API address comes from SPIFFE_ENDPOINT_SOCKET (unix:///path), as go-spiffe reads it.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
)

var dials atomic.Int64

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: spiffe-probe fetch|watch|jwt|validate|serve|dial [flags]"))
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	timeout := fs.Duration("timeout", 20*time.Second, "give up after")
	updates := fs.Int("updates", 2, "watch: distinct SVIDs to see")
	audience := fs.String("audience", "", "jwt, validate: audience")
	token := fs.String("token", "", "validate: the JWT-SVID")
	listen := fs.String("listen", ":7443", "serve: address")
	allow := fs.String("allow", "", "serve: the client SPIFFE ID to accept")
	addr := fs.String("addr", "", "dial: server address")
	expect := fs.String("expect", "", "dial: the server SPIFFE ID to accept")
	_ = fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	opts := []workloadapi.ClientOption{workloadapi.WithDialOptions(grpc.WithContextDialer(countingDialer))}

	switch cmd {
	case "fetch":
		x, err := workloadapi.FetchX509Context(ctx, opts...)
		if err != nil {
			fail(err)
		}
		svid := x.DefaultSVID()
		id, chains, err := x509svid.Verify(svid.Certificates, x.Bundles)
		if err != nil {
			fail(fmt.Errorf("chain does not verify against the bundle: %w", err))
		}
		emit(map[string]any{"spiffeId": svid.ID.String(), "verifiedId": id.String(), "chainLength": len(chains[0]), "serial": svid.Certificates[0].SerialNumber.Text(16), "notAfter": svid.Certificates[0].NotAfter, "bundles": x.Bundles.Len(), "svids": len(x.SVIDs)})
	case "watch":
		client, err := workloadapi.New(ctx, opts...)
		if err != nil {
			fail(err)
		}
		defer client.Close()
		w := &watcher{want: *updates, seen: map[string]bool{}, done: make(chan struct{})}
		go func() { _ = client.WatchX509Context(ctx, w) }()
		select {
		case <-w.done:
			emit(map[string]any{"updates": w.count, "distinct": len(w.seen), "errors": w.errors, "dials": dials.Load()})
		case <-ctx.Done():
			fail(fmt.Errorf("saw %d distinct SVIDs in %d updates before the timeout (errors %v)", len(w.seen), w.count, w.errors))
		}
	case "jwt":
		svid, err := workloadapi.FetchJWTSVID(ctx, jwtParams(*audience), opts...)
		if err != nil {
			fail(err)
		}
		emit(map[string]any{"spiffeId": svid.ID.String(), "token": svid.Marshal(), "expiry": svid.Expiry})
	case "validate":
		client, err := workloadapi.New(ctx, opts...)
		if err != nil {
			fail(err)
		}
		defer client.Close()
		svid, err := client.ValidateJWTSVID(ctx, *token, *audience)
		if err != nil {
			fail(err)
		}
		emit(map[string]any{"spiffeId": svid.ID.String(), "audience": svid.Audience})
	case "serve":
		source, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(opts...))
		if err != nil {
			fail(err)
		}
		defer source.Close()
		allowed, err := spiffeid.FromString(*allow)
		if err != nil {
			fail(err)
		}
		ln, err := tls.Listen("tcp", *listen, tlsconfig.MTLSServerConfig(source, source, tlsconfig.AuthorizeID(allowed)))
		if err != nil {
			fail(err)
		}
		own, _ := source.GetX509SVID()
		emit(map[string]any{"listening": *listen, "spiffeId": own.ID.String()})
		for {
			conn, err := ln.Accept()
			if err != nil {
				fail(err)
			}
			go serveOne(conn.(*tls.Conn), own.ID.String())
		}
	case "dial":
		source, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(opts...))
		if err != nil {
			fail(err)
		}
		defer source.Close()
		expected, err := spiffeid.FromString(*expect)
		if err != nil {
			fail(err)
		}
		d := tls.Dialer{Config: tlsconfig.MTLSClientConfig(source, source, tlsconfig.AuthorizeID(expected))}
		conn, err := d.DialContext(ctx, "tcp", *addr)
		if err != nil {
			fail(err)
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		peer, err := x509svid.IDFromCert(tc.ConnectionState().PeerCertificates[0])
		if err != nil {
			fail(err)
		}
		own, _ := source.GetX509SVID()
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(tc, "hello from %s\n", own.ID); err != nil {
			fail(err)
		}
		reply, err := bufio.NewReader(tc).ReadString('\n')
		if err != nil {
			fail(fmt.Errorf("no reply: %w", err))
		}
		emit(map[string]any{"server": peer.String(), "client": own.ID.String(), "reply": strings.TrimSpace(reply)})
	default:
		fail(fmt.Errorf("unknown command %q", cmd))
	}
}

func serveOne(c *tls.Conn, own string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		fmt.Fprintf(os.Stderr, "handshake: %v\n", err)
		return
	}
	peer, err := x509svid.IDFromCert(c.ConnectionState().PeerCertificates[0])
	if err != nil {
		return
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	fmt.Fprintf(c, "%s saw %s: %s\n", own, peer, strings.TrimSpace(line))
}

func jwtParams(audience string) jwtsvid.Params {
	return jwtsvid.Params{Audience: audience}
}

// countingDialer dials the Workload API's unix socket and counts connections, so `watch` can show
// that rotations arrive on one connection.
func countingDialer(ctx context.Context, addr string) (net.Conn, error) {
	dials.Add(1)
	path := strings.TrimPrefix(strings.TrimPrefix(addr, "unix://"), "unix:")
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}

type watcher struct {
	want   int
	count  int
	errors []string
	seen   map[string]bool
	done   chan struct{}
	closed bool
}

func (w *watcher) OnX509ContextUpdate(x *workloadapi.X509Context) {
	w.count++
	svid := x.DefaultSVID()
	serial := svid.Certificates[0].SerialNumber.Text(16)
	w.seen[serial] = true
	emit(map[string]any{"update": w.count, "spiffeId": svid.ID.String(), "serial": serial, "notAfter": svid.Certificates[0].NotAfter})
	if len(w.seen) >= w.want && !w.closed {
		w.closed = true
		close(w.done)
	}
}

func (w *watcher) OnX509ContextWatchError(err error) {
	w.errors = append(w.errors, err.Error())
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "spiffe-probe: %v\n", err)
	os.Exit(3)
}
