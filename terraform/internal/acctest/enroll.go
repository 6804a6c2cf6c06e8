package acctest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/nats-io/nkeys"
	"github.com/weft/weft/terraform/internal/weftapi"
)

// enrollRequest is the body of POST /v1/enroll (protocol EnrollRequest), for making real nodes.
type enrollRequest struct {
	Version            int               `json:"version"`
	JoinKey            string            `json:"joinKey,omitempty"`
	Attestation        *AwsAttestation   `json:"attestation,omitempty"`
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
	if labels == nil {
		labels = map[string]string{}
	}
	key, err := c.Client().CreateJoinKey(context.Background(), weftapi.JoinKeyCreateRequest{TTLSeconds: 3600, Labels: labels})
	if err != nil {
		t.Fatalf("enroll %s: create a join key: %v", name, err)
	}
	node, err := c.EnrollWithKey(key.Key, name, site)
	if err != nil {
		t.Fatal(err)
	}
	return *node
}

// EnrollWithKey enrolls a node named name with the join key secret.
func (c *Controller) EnrollWithKey(key, name, site string) (*weftapi.Node, error) {
	return c.enroll(enrollRequest{JoinKey: key, Name: name, Site: site, Endpoints: map[string]string{"private": "127.0.0.1:51820"}})
}

// EnrollKeyless enrolls a node with no join key as an agent on the simulated AWS instance whose
// private address is privateIP does: it reads the instance's signed identity document from the
// metadata service and presents it as the request's attestation (an enrollment policy must admit
// the instance). The node's site is the AWS region, its private endpoint the instance's address.
func (c *Controller) EnrollKeyless(name, privateIP string) (*weftapi.Node, error) {
	att, err := c.ReadAwsAttestation(privateIP)
	if err != nil {
		return nil, fmt.Errorf("enroll %s: read the instance identity: %w", name, err)
	}
	return c.enroll(enrollRequest{
		Attestation: att,
		Name:        name, Site: AwsRegion,
		Endpoints: map[string]string{"private": privateIP + ":51820"},
	})
}

func (c *Controller) enroll(req enrollRequest) (*weftapi.Node, error) {
	ctx := context.Background()
	wg := make([]byte, 32)
	if _, err := rand.Read(wg); err != nil {
		return nil, err
	}
	user, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	natsKey, err := user.PublicKey()
	if err != nil {
		return nil, err
	}
	req.Version, req.ListenPort = 1, 51820
	req.WireguardPublicKey = base64.StdEncoding.EncodeToString(wg)
	req.NatsPublicKey = natsKey
	var out struct {
		NodeID string `json:"nodeId"`
	}
	if err := c.Client().Do(ctx, "POST", "/v1/enroll", req, &out, 201); err != nil {
		return nil, fmt.Errorf("enroll %s: %w", req.Name, err)
	}
	return c.Client().GetNode(ctx, out.NodeID)
}
