package acctest

// The acceptance controller's simulated cloud: the AWS simulator of this repository
// (`node cloud-sim/dist/main.js aws`, EC2's wire format and an IMDSv2 that signs instance identity
// documents with a key made for the run) on loopback. The controller inventories it like a real
// account and trusts that key, and nothing else, for AWS documents; a keyless enrollment reads its
// instance's signed document from the simulator's metadata service, as the agent does.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// AWS account, region and VPC of the simulated fleet.
const (
	AwsAccount = "210987654321"
	AwsRegion  = "eu-west-1"
	AwsVPC     = "vpc-0f7e1a2b3c4d5e6f7"
)

// AwsInstance is an instance of the simulated fleet. Its private address is a loopback address of
// its own: the metadata service knows its caller by source address, so a request from that address
// is a request from the instance.
type AwsInstance struct {
	ID, PrivateIP string
	Tags          map[string]string
}

// AwsFleet is what the simulator starts with: two web servers (one of them old) and a database.
var AwsFleet = []AwsInstance{
	{ID: "i-0f7acc00000000001", PrivateIP: "127.0.42.11", Tags: map[string]string{"Name": "tf-db-1", "role": "db", "env": "test"}},
	{ID: "i-0f7acc00000000002", PrivateIP: "127.0.42.21", Tags: map[string]string{"Name": "tf-web-1", "role": "web", "env": "test"}},
	{ID: "i-0f7acc00000000003", PrivateIP: "127.0.42.31", Tags: map[string]string{"Name": "tf-web-2", "role": "web", "env": "old"}},
}

// awsSim is a running AWS simulator.
type awsSim struct {
	// URL is the EC2 API endpoint; MetadataURL the instance metadata service.
	URL, MetadataURL string
	// TrustFile is the PEM certificate the controller must trust for this run's documents.
	TrustFile string
	cmd       *exec.Cmd
}

// startAwsSim runs the simulator with AwsFleet, its trust file written into dir, and waits for its
// ready line.
func startAwsSim(dir string) (*awsSim, error) {
	fleet := map[string]any{
		"networks": []map[string]any{{
			"id": AwsVPC, "name": "tf-acc", "region": AwsRegion, "cidrs": []string{"127.0.42.0/24"},
			"subnets": []map[string]string{{"id": "subnet-0tfacc0001", "name": "tf-acc-a", "cidr": "127.0.42.0/24", "zone": AwsRegion + "a"}},
		}},
	}
	var instances []map[string]any
	for _, i := range AwsFleet {
		instances = append(instances, map[string]any{
			"id": i.ID, "name": i.Tags["Name"], "region": AwsRegion, "zone": AwsRegion + "a",
			"network": AwsVPC, "subnet": "subnet-0tfacc0001", "privateIp": i.PrivateIP, "tags": i.Tags,
		})
	}
	fleet["instances"] = instances
	b, err := json.Marshal(fleet)
	if err != nil {
		return nil, err
	}
	fleetFile := filepath.Join(dir, "aws-fleet.json")
	if err := os.WriteFile(fleetFile, b, 0o600); err != nil {
		return nil, err
	}
	trustDir := filepath.Join(dir, "aws-trust")
	if err := os.Mkdir(trustDir, 0o700); err != nil {
		return nil, err
	}
	main := filepath.Join(RepoRoot(), "cloud-sim", "dist", "main.js")
	if _, err := os.Stat(main); err != nil {
		return nil, fmt.Errorf("%s is missing: build the repository first (npx tsc -b, or scripts/setup.sh)", main)
	}
	cmd := exec.Command("node", main, "aws", "--account", AwsAccount,
		"--host", "127.0.0.1", "--port", "0", "--metadata-host", "127.0.0.1", "--metadata-port", "0",
		"--fleet", fleetFile, "--trust-out", trustDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs, err := os.Create(filepath.Join(dir, "aws-sim.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		logs.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logs.Close()
		return nil, fmt.Errorf("start the AWS simulator: %w", err)
	}
	s := &awsSim{cmd: cmd}
	ready := make(chan error, 1)
	go func() {
		defer logs.Close()
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			_, _ = logs.Write(append(sc.Bytes(), '\n'))
			if sent {
				continue
			}
			var rec struct {
				Ready       bool              `json:"ready"`
				URL         string            `json:"url"`
				MetadataURL string            `json:"metadataUrl"`
				Trust       map[string]string `json:"trust"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Ready {
				s.URL, s.MetadataURL, s.TrustFile = rec.URL, rec.MetadataURL, rec.Trust["aws"]
				sent = true
				if s.URL == "" || s.MetadataURL == "" || s.TrustFile == "" {
					ready <- fmt.Errorf("the AWS simulator's ready line lacks its URLs or trust file: %s", sc.Text())
				} else {
					ready <- nil
				}
			}
		}
		if !sent {
			ready <- errors.New("the AWS simulator exited before it was ready (see aws-sim.log)")
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			s.Stop()
			return nil, err
		}
	case <-time.After(30 * time.Second):
		s.Stop()
		return nil, errors.New("the AWS simulator printed no ready line within 30 s")
	}
	return s, nil
}

// Stop ends the simulator (SIGTERM, then SIGKILL after 5 s).
func (s *awsSim) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	s.cmd = nil
}

// AwsAttestation is EnrollRequest.attestation for AWS (protocol AwsAttestation).
type AwsAttestation struct {
	Provider  string `json:"provider"`
	Document  string `json:"document"`
	Signature string `json:"signature"`
}

// ReadAwsAttestation reads the signed instance identity document of the instance whose private
// address is privateIP from the simulator's metadata service, over IMDSv2 as the agent does
// (agent/src/cloud/aws.ts): a session token, then the document and its RSA-2048 PKCS#7. The
// requests come from privateIP, which is how the metadata service knows which instance asks.
func (c *Controller) ReadAwsAttestation(privateIP string) (*AwsAttestation, error) {
	if c.aws == nil {
		return nil, errors.New("the controller has no simulated AWS account")
	}
	local, err := net.ResolveTCPAddr("tcp", privateIP+":0")
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DialContext: dialer.DialContext, DisableKeepAlives: true}}
	base := strings.TrimRight(c.aws.MetadataURL, "/")
	call := func(method, path string, header http.Header) (string, error) {
		req, err := http.NewRequestWithContext(context.Background(), method, base+path, nil)
		if err != nil {
			return "", err
		}
		req.Header = header
		res, err := client.Do(req)
		if err != nil {
			return "", fmt.Errorf("%s %s from %s: %w", method, path, privateIP, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		if err != nil {
			return "", err
		}
		if res.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s %s from %s: HTTP %d: %s", method, path, privateIP, res.StatusCode, body)
		}
		return string(body), nil
	}
	token, err := call("PUT", "/latest/api/token", http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {"60"}})
	if err != nil {
		return nil, err
	}
	h := http.Header{"X-Aws-Ec2-Metadata-Token": {strings.TrimSpace(token)}}
	doc, err := call("GET", "/latest/dynamic/instance-identity/document", h)
	if err != nil {
		return nil, err
	}
	sig, err := call("GET", "/latest/dynamic/instance-identity/rsa2048", h)
	if err != nil {
		return nil, err
	}
	return &AwsAttestation{Provider: "aws", Document: doc, Signature: strings.TrimSpace(sig)}, nil
}
