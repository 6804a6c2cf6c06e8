package acctest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/nats-io/nkeys"
	"github.com/weft/weft/terraform/internal/weftapi"
)

// enrollRequest is the body of POST /v1/enroll (protocol EnrollRequest), for making real nodes.
type enrollRequest struct {
	Version            int               `json:"version"`
	JoinKey            string            `json:"joinKey"`
	Name               string            `json:"name"`
	Site               string            `json:"site"`
	WireguardPublicKey string            `json:"wireguardPublicKey"`
	NatsPublicKey      string            `json:"natsPublicKey"`
	ListenPort         int               `json:"listenPort"`
	Endpoints          map[string]string `json:"endpoints"`
}

// Enroll makes a real node the way an agent does: a one-time join key with these labels, then an
// enrollment with a fresh WireGuard key and NATS user key. No agent runs for it (it stays
// `never-seen`), which is all the node resource and data sources need.
func (c *Controller) Enroll(t testing.TB, name, site string, labels map[string]string) weftapi.Node {
	t.Helper()
	ctx := context.Background()
	if labels == nil {
		labels = map[string]string{}
	}
	key, err := c.Client().CreateJoinKey(ctx, weftapi.JoinKeyCreateRequest{TTLSeconds: 3600, Labels: labels})
	if err != nil {
		t.Fatalf("enroll %s: create a join key: %v", name, err)
	}
	wg := make([]byte, 32)
	if _, err := rand.Read(wg); err != nil {
		t.Fatal(err)
	}
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	natsKey, err := user.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	req := enrollRequest{
		Version: 1, JoinKey: key.Key, Name: name, Site: site,
		WireguardPublicKey: base64.StdEncoding.EncodeToString(wg),
		NatsPublicKey:      natsKey,
		ListenPort:         51820,
		Endpoints:          map[string]string{"private": "127.0.0.1:51820"},
	}
	var out struct {
		NodeID string `json:"nodeId"`
	}
	if err := c.Client().Do(ctx, "POST", "/v1/enroll", req, &out, 201); err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	node, err := c.Client().GetNode(ctx, out.NodeID)
	if err != nil {
		t.Fatalf("enroll %s: read it back: %v", name, err)
	}
	return *node
}
