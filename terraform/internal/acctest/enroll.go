package acctest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/weft/weft/terraform/internal/weftapi"
)

// enrollRequest is the body of POST /v1/enroll (protocol EnrollRequest), for making real nodes.
type enrollRequest struct {
	Version            int               `json:"version"`
	JoinKey            string            `json:"joinKey,omitempty"`
	Attestation        *AwsAttestation   `json:"attestation,omitempty"`
	Name               string            `json:"name"`
	Site               string            `json:"site,omitempty"`
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

// unusedEndpoint is the WireGuard endpoint the test nodes advertise: no agent runs for them, and the
// controller refuses loopback endpoints (another host could not reach them), so an address of a
// private range nothing here uses.
const unusedEndpoint = "10.255.42.1:51820"

// EnrollWithKey enrolls a node named name with the join key secret, naming site ("" names none:
// the key's site, or refused when nothing vouches for one).
func (c *Controller) EnrollWithKey(key, name, site string) (*weftapi.Node, error) {
	return c.enroll(enrollRequest{JoinKey: key, Name: name, Site: site, Endpoints: map[string]string{"private": unusedEndpoint}})
}

// EnrollKeyless enrolls a node with no join key as an agent on the simulated AWS instance whose
// private address is privateIP does: it reads the instance's signed identity document from the
// metadata service and presents it as the request's attestation (an enrollment policy must admit
// the instance). The agent names site ("" names none: the policy's site).
func (c *Controller) EnrollKeyless(name, privateIP, site string) (*weftapi.Node, error) {
	att, err := c.ReadAwsAttestation(privateIP)
	if err != nil {
		return nil, fmt.Errorf("enroll %s: read the instance identity: %w", name, err)
	}
	return c.enroll(enrollRequest{
		Attestation: att,
		Name:        name, Site: site,
		Endpoints: map[string]string{"private": unusedEndpoint},
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

var refusalRef = regexp.MustCompile(`ref-[0-9a-f]{10}`)

// Refusal is what the controller logged about a refusal: its answer to a stranger carries only a
// code and a reference (ref-…), the reason and the detail are in its log line with that reference
// (waited for briefly: the log is copied from the controller's stderr as it comes). A refusal
// without a reference (a 400 names the caller's own fields) is its own detail. ok is false when
// err is nil or no log line has its reference.
func (c *Controller) Refusal(err error) (reason, detail string, ok bool) {
	if err == nil {
		return "", "", false
	}
	ref := refusalRef.FindString(err.Error())
	if ref == "" {
		return "", err.Error(), true
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, rerr := os.ReadFile(c.logs.Name())
		if rerr != nil {
			return "", "", false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, ref) {
				continue
			}
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) != nil {
				return "", line, true
			}
			reason, _ = entry["reason"].(string)
			if detail, ok = entry["err"].(string); !ok {
				d, _ := json.Marshal(entry["err"])
				detail = string(d)
			}
			return reason, detail, true
		}
	}
	return "", "", false
}
