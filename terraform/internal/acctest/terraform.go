package acctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Workspace runs the Terraform binary of the acceptance tests (TF_ACC_TERRAFORM_PATH) in a
// directory of its own, with a CLI configuration whose dev_overrides point weft/weft at this
// provider built from source: the way the README tells a person to use it. It is for what
// terraform-plugin-testing cannot do (it never installs modules).
type Workspace struct {
	Dir       string
	cliConfig string
	Env       []string
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// providerBinaryDir builds terraform-provider-weft once per test binary.
func providerBinaryDir() (string, error) {
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "weft-tf-provider-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "terraform-provider-weft"), ".")
		cmd.Dir = filepath.Join(RepoRoot(), "terraform")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build the provider: %v\n%s", err, out)
		}
	})
	return binDir, buildErr
}

// NewWorkspace makes a workspace holding files (name → content).
func NewWorkspace(t testing.TB, files map[string]string) *Workspace {
	t.Helper()
	bin, err := providerBinaryDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rc := filepath.Join(dir, ".terraformrc")
	config := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"weft/weft\" = %q\n  }\n  direct {}\n}\ndisable_checkpoint = true\n", bin)
	if err := os.WriteFile(rc, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &Workspace{Dir: dir, cliConfig: rc}
}

// Run runs `terraform args…` and returns its standard output; a failure ends the test with
// Terraform's output.
func (w *Workspace) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := w.Try(args...)
	if err != nil {
		t.Fatalf("terraform %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// Try runs `terraform args…`; the error carries Terraform's output.
func (w *Workspace) Try(args ...string) (string, error) {
	cmd := exec.Command(os.Getenv("TF_ACC_TERRAFORM_PATH"), args...)
	cmd.Dir = w.Dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+w.cliConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_CLI_ARGS=-no-color")
	cmd.Env = append(cmd.Env, w.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\n%s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}
