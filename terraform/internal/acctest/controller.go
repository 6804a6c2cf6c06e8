// Package acctest starts what the acceptance tests run against: a real controller of this
// repository (`node cli/dist/main.js controller`, embedded NATS, a temporary state directory, on
// loopback) that inventories an on-prem site and a simulated AWS account (cloud.go), and a
// Terraform binary named explicitly (never whatever `terraform` is on PATH).
//
// Acceptance tests run with TF_ACC=1 and TF_ACC_TERRAFORM_PATH set (scripts/test.sh sets both
// after scripts/setup.sh installed Terraform into .tools/). Main, called from each package's
// TestMain, gives every test one controller, points TF_CLI_CONFIG_FILE at a file of its own and
// stops the controller (and its nats-server) at the end, also when tests fail.
package acctest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weft/weft/terraform/internal/weftapi"
)

// Controller is a running controller of this repository.
type Controller struct {
	// URL is the API's https URL on loopback.
	URL string
	// CAHash pins the controller's CA.
	CAHash string
	// Token is the admin token.
	Token    string
	StateDir string
	// Socket is the controller's unix socket (plain HTTP).
	Socket string
	// InventorySite is the on-prem site of the inventory file the controller lists.
	InventorySite string

	aws  *awsSim
	cmd  *exec.Cmd
	logs *os.File
	dir  string
}

var (
	once    sync.Once
	shared  *Controller
	initErr error
)

// Enabled reports whether acceptance tests run (TF_ACC is set).
func Enabled() bool { return os.Getenv("TF_ACC") != "" }

// RepoRoot is the repository's root (terraform/..).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Main runs a package's tests: call it from TestMain. It gives Terraform a CLI configuration of
// its own (the environment's TF_CLI_CONFIG_FILE may name a missing file) and stops the
// controller once every test is done.
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "weft-tf-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cliConfig := filepath.Join(dir, "terraformrc")
	// No registry is reachable in the tests: the provider under test is served in-process.
	if err := os.WriteFile(cliConfig, []byte("disable_checkpoint = true\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("TF_CLI_CONFIG_FILE", cliConfig)
	os.Setenv("CHECKPOINT_DISABLE", "1")
	// The provider's source address is weft/weft (registry.terraform.io/weft/weft).
	os.Setenv("TF_ACC_PROVIDER_NAMESPACE", "weft")
	if Enabled() && os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		fmt.Fprintln(os.Stderr, "acceptance tests: TF_ACC_TERRAFORM_PATH must name the Terraform binary to test with (scripts/setup.sh installs one into .tools/bin); a terraform on PATH is not used")
		return 1
	}
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	return code
}

// Shared returns the package's controller, starting it on first use. Without TF_ACC the test is
// skipped (unit runs); with it, a controller that does not start fails the test.
func Shared(t testing.TB) *Controller {
	t.Helper()
	if !Enabled() {
		t.Skip("acceptance test: set TF_ACC=1 (scripts/test.sh does) to run it against a real controller")
	}
	once.Do(func() { shared, initErr = Start() })
	if initErr != nil {
		t.Fatalf("starting the controller: %v", initErr)
	}
	return shared
}

// inventoryFile is an on-prem site the controller's inventory lists, so the inventory data source
// has real instances to read. (Enrollment policies select the simulated AWS account instead: an
// on-prem host has no signed instance document, so no policy can admit one.)
const inventoryFile = `site: tf-lab
networks:
  - id: lan
    cidrs: [10.42.0.0/16]
instances:
  - id: db-1
    network: lan
    privateIps: [10.42.0.11]
    tags: { role: db, env: test }
  - id: web-1
    network: lan
    privateIps: [10.42.0.21]
    publicIps: [203.0.113.21]
    tags: { role: web, env: test }
  - id: old-1
    network: lan
    privateIps: [10.42.0.31]
    tags: { role: web, env: old }
    state: stopped
`

// Start runs a controller of this repository on loopback with a temporary state directory and
// waits until it says it is ready.
func Start() (*Controller, error) {
	root := RepoRoot()
	cli := filepath.Join(root, "cli", "dist", "main.js")
	if _, err := os.Stat(cli); err != nil {
		return nil, fmt.Errorf("%s is missing: build the repository first (npx tsc -b, or scripts/setup.sh)", cli)
	}
	dir, err := os.MkdirTemp("", "weft-tf-acc-")
	if err != nil {
		return nil, err
	}
	c := &Controller{dir: dir, StateDir: filepath.Join(dir, "state"), InventorySite: "tf-lab"}
	if err := os.WriteFile(filepath.Join(dir, "tf-lab.yaml"), []byte(inventoryFile), 0o600); err != nil {
		return nil, c.fail(err)
	}
	if c.aws, err = startAwsSim(dir); err != nil {
		return nil, c.fail(err)
	}
	// The AWS account is the simulator's; its signing certificate is the only one trusted for AWS
	// instance documents (inventory.instanceIdentity, as the lab configures it).
	inv := fmt.Sprintf(`intervalSeconds: 3600
accounts:
  - provider: onprem
    file: tf-lab.yaml
  - { provider: aws, account: %q, regions: [%s], endpoint: %q }
instanceIdentity:
  aws: { certificates: { "*": %q } }
`, AwsAccount, AwsRegion, c.aws.URL, c.aws.TrustFile)
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(inv), 0o600); err != nil {
		return nil, c.fail(err)
	}
	if c.logs, err = os.Create(filepath.Join(dir, "controller.log")); err != nil {
		return nil, c.fail(err)
	}
	c.cmd = exec.Command("node", cli, "controller",
		"--state-dir", c.StateDir,
		"--api-host", "127.0.0.1", "--api-port", "0",
		"--nats-host", "127.0.0.1", "--nats-port", "0",
		"--inventory-config", filepath.Join(dir, "inventory.yaml"))
	// Test credentials the simulator accepts (it checks no signatures); never this machine's.
	c.cmd.Env = append(os.Environ(), "WEFT_LOG_LEVEL=info",
		"AWS_ACCESS_KEY_ID=AKIAWEFTTFACC0000000", "AWS_SECRET_ACCESS_KEY=weft-tf-acc-secret", "AWS_EC2_METADATA_DISABLED=true")
	// Its own process group, so Stop ends the controller and the nats-server it started.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The controller logs (JSON lines) to standard error.
	out, err := c.cmd.StderrPipe()
	if err != nil {
		return nil, c.fail(err)
	}
	c.cmd.Stdout = c.logs
	if err := c.cmd.Start(); err != nil {
		return nil, c.fail(fmt.Errorf("start node: %w", err))
	}
	ready := make(chan error, 1)
	go c.watch(out, ready)
	select {
	case err := <-ready:
		if err != nil {
			return nil, c.fail(err)
		}
	case <-time.After(90 * time.Second):
		return nil, c.fail(errors.New("no `controller ready` line within 90 s"))
	}
	token, err := os.ReadFile(filepath.Join(c.StateDir, "admin-token"))
	if err != nil {
		return nil, c.fail(err)
	}
	c.Token = strings.TrimSpace(string(token))
	c.Socket = filepath.Join(c.StateDir, "api.sock")
	// The inventory is synced once at start; wait for the instances the tests read.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		inv, err := c.Client().Inventory(ctx)
		want := 3 + len(AwsFleet)
		if err == nil && len(inv.Instances) == want {
			break
		}
		if ctx.Err() != nil {
			got := -1
			if inv != nil {
				got = len(inv.Instances)
			}
			return nil, c.fail(fmt.Errorf("the inventory did not list the %d instances of tf-lab.yaml and the AWS simulator within 60 s (got %d, last error %v)", want, got, err))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return c, nil
}

// watch copies the controller's log to the log file and reports its `controller ready` line.
func (c *Controller) watch(out io.Reader, ready chan<- error) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = c.logs.Write(append(line, '\n'))
		if sent {
			continue
		}
		var rec struct {
			Msg    string `json:"msg"`
			API    string `json:"api"`
			CAHash string `json:"caHash"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "controller ready" {
			c.URL, c.CAHash = rec.API, rec.CAHash
			sent = true
			ready <- nil
		}
	}
	if !sent {
		ready <- errors.New("the controller exited before it was ready")
	}
}

func (c *Controller) fail(err error) error {
	log := ""
	if c.logs != nil {
		if b, rerr := os.ReadFile(c.logs.Name()); rerr == nil {
			log = "\ncontroller log:\n" + tail(string(b), 4000)
		}
	}
	c.Stop()
	return fmt.Errorf("%w%s", err, log)
}

// Stop ends the controller's process group (SIGTERM, then SIGKILL after 10 s) and the AWS
// simulator, and removes its state directory.
func (c *Controller) Stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		pgid := c.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		// The nats-server child is in the same group; make sure nothing is left.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		c.cmd = nil
	}
	c.aws.Stop()
	c.aws = nil
	if c.logs != nil {
		_ = c.logs.Close()
	}
	if c.dir != "" && os.Getenv("WEFT_TF_KEEP_STATE") == "" {
		_ = os.RemoveAll(c.dir)
	}
}

// Client is an API client for the controller, pinned like the provider.
func (c *Controller) Client() *weftapi.Client {
	cl, err := weftapi.New(weftapi.Options{Endpoint: c.URL, CAHash: c.CAHash, Token: c.Token})
	if err != nil {
		panic(err)
	}
	return cl
}

// RequiredProviders names the provider by its source address, weft/weft.
const RequiredProviders = "terraform {\n  required_providers {\n    weft = { source = \"weft/weft\" }\n  }\n}\n"

// ProviderConfig is the required_providers block and a provider block for this controller.
func (c *Controller) ProviderConfig() string {
	return RequiredProviders + fmt.Sprintf("provider \"weft\" {\n  endpoint = %q\n  ca_hash  = %q\n  token    = %q\n}\n", c.URL, c.CAHash, c.Token)
}

// CLI runs the `weft` command against this controller (the token through WEFT_ADMIN_TOKEN, never
// on the command line) and returns its standard output.
func (c *Controller) CLI(t testing.TB, args ...string) string {
	t.Helper()
	argv := append([]string{filepath.Join(RepoRoot(), "cli", "dist", "main.js")}, args...)
	argv = append(argv, "--api", c.URL, "--ca-hash", c.CAHash)
	cmd := exec.Command("node", argv...)
	cmd.Env = append(os.Environ(), "WEFT_ADMIN_TOKEN="+c.Token)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("weft %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
