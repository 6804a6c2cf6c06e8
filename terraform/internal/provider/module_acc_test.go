package provider

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/weft/weft/terraform/internal/acctest"
)

func terraformDir() string { return filepath.Join(acctest.RepoRoot(), "terraform") }

// cloudInitValid runs Debian's `cloud-init schema` on user data.
func cloudInitValid(t *testing.T, name, userData string) error {
	file := writeFile(t, name+".yaml", userData)
	out, err := exec.Command("cloud-init", "schema", "--config-file", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cloud-init schema on the %s user data: %v\n%s\n--- user data:\n%s", name, err, out, userData)
	}
	if !strings.Contains(string(out), "Valid cloud-config") {
		return fmt.Errorf("cloud-init schema on the %s user data: got %q, want Valid cloud-config", name, out)
	}
	return nil
}

// outputs reads `terraform output -json` into name → value.
func outputs(t *testing.T, ws *acctest.Workspace) map[string]any {
	t.Helper()
	var raw map[string]struct {
		Value any `json:"value"`
	}
	if err := json.Unmarshal([]byte(ws.Run(t, "output", "-json")), &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for k, v := range raw {
		out[k] = v.Value
	}
	return out
}

// planIsEmpty runs `terraform plan -detailed-exitcode` (exit 0: no changes, 2: changes).
func planIsEmpty(t *testing.T, ws *acctest.Workspace) {
	t.Helper()
	if out, err := ws.Try("plan", "-detailed-exitcode", "-input=false"); err != nil {
		t.Fatalf("plan after apply: want no changes, got %v", err)
	} else if !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after apply: want \"No changes.\", got:\n%s", out)
	}
}

// The module renders user data for the three clouds the examples use; each is valid cloud-config
// (Debian's cloud-init), runs a script sh can parse, and pins the controller's CA. With
// create_join_key the module makes a real key on the controller and the VM gets its secret.
// Run with a real Terraform and the provider through dev_overrides (terraform-plugin-testing does
// not install modules).
func TestAccModule_agentCloudInit(t *testing.T) {
	ctl := acctest.Shared(t)
	if _, err := exec.LookPath("cloud-init"); err != nil {
		t.Fatal("cloud-init is not installed: scripts/setup.sh installs Debian's cloud-init package (for `cloud-init schema`)")
	}
	module := filepath.Join(terraformDir(), "modules", "agent-cloud-init")
	config := ctl.ProviderConfig() + fmt.Sprintf(`
locals {
  controller = %[2]q
  pin        = %[3]q
}
module "aws" {
  source         = %[1]q
  controller_url = local.controller
  ca_hash        = local.pin
  cloud          = "aws"
  site           = "aws-eu-west-1"
}
module "azure" {
  source          = %[1]q
  controller_url  = local.controller
  ca_hash         = local.pin
  cloud           = "azure"
  site            = "azure-westeurope"
  create_join_key = true
  join_key_labels = { "weft:namespace" = "shop", "weft:serviceaccount" = "db" }
  join_key_instance_selector = {
    provider = "azure"
    account  = "00000000-0000-0000-0000-000000000000"
  }
}
module "gcp" {
  source         = %[1]q
  controller_url = local.controller
  ca_hash        = local.pin
  cloud          = "gcp"
  site           = "gcp-default"
  extra_up_args  = ["--mtu", "1380", "--public-endpoint", "it's:quoted"]
}
resource "weft_join_key" "given" {
  labels = { role = "given" }
}
module "given" {
  source         = %[1]q
  controller_url = local.controller
  ca_hash        = local.pin
  join_key       = weft_join_key.given.key
  node_name      = "onprem-1"
}
output "given" {
  value     = module.given.user_data
  sensitive = true
}
output "given_key" {
  value     = weft_join_key.given.key
  sensitive = true
}
output "aws" {
  value     = module.aws.user_data
  sensitive = true
}
output "azure" {
  value     = module.azure.user_data
  sensitive = true
}
output "azure_base64" {
  value     = module.azure.user_data_base64
  sensitive = true
}
output "azure_key_id" {
  value = module.azure.join_key_id
}
output "gcp" {
  value     = module.gcp.user_data
  sensitive = true
}
output "script" {
  value = module.aws.bootstrap_script
}
`, module, ctl.URL, ctl.CAHash)
	ws := acctest.NewWorkspace(t, map[string]string{"main.tf": config})
	ws.Run(t, "get")
	ws.Run(t, "apply", "-auto-approve", "-input=false")
	planIsEmpty(t, ws)
	out := outputs(t, ws)
	str := func(name string) string { s, _ := out[name].(string); return s }
	hex := strings.TrimPrefix(ctl.CAHash, "sha256:")
	aws, azure, gcp, given := str("aws"), str("azure"), str("gcp"), str("given")
	for name, ud := range map[string]string{"aws": aws, "azure": azure, "gcp": gcp, "given": given} {
		if err := cloudInitValid(t, name, ud); err != nil {
			t.Error(err)
		}
		for _, want := range []string{"#cloud-config\n", "/usr/local/sbin/weft-bootstrap", "pin='" + hex + "'", "url='" + ctl.URL + "'"} {
			if !strings.Contains(ud, want) {
				t.Errorf("%s user data: want it to contain %q:\n%s", name, want, ud)
			}
		}
	}
	if !strings.Contains(aws, `'--cloud' 'aws' '--site' 'aws-eu-west-1'`) || strings.Contains(aws, "join-key") {
		t.Errorf("aws (keyless) user data: want --cloud aws --site aws-eu-west-1 and no join key:\n%s", aws)
	}
	if !strings.HasPrefix(str("given_key"), "weft_") || !strings.Contains(given, str("given_key")+"\n") ||
		!strings.Contains(given, `'--join-key-file' '/etc/weft/bootstrap/join-key' '--name' 'onprem-1'`) || strings.Contains(given, "'--cloud'") {
		t.Errorf("user data with a given join key: want that key in the file, --join-key-file and --name, no --cloud:\n%s", given)
	}
	if !strings.Contains(gcp, `'--mtu' '1380' '--public-endpoint' 'it'\''s:quoted'`) {
		t.Errorf("gcp user data: extra arguments not passed quoted:\n%s", gcp)
	}
	// The key the module created is real, has the labels and the selector, and is in the user data.
	id := str("azure_key_id")
	key, err := ctl.Client().GetJoinKey(ctx(), id)
	if err != nil {
		t.Fatalf("the module's join key %q: %v", id, err)
	}
	if key.Labels["weft:serviceaccount"] != "db" || key.InstanceSelector == nil || key.InstanceSelector.Provider != "azure" || key.Reusable || key.State != "active" {
		t.Errorf("the module's join key: %+v; want active, one-time, labels of db, selector for azure", key)
	}
	if !regexp.MustCompile(`weft_`+id+`_\S+`).MatchString(azure) || !strings.Contains(azure, `'--join-key-file' '/etc/weft/bootstrap/join-key' '--cloud' 'azure'`) {
		t.Errorf("azure user data: want the key %s in a file and --join-key-file:\n%s", id, azure)
	}
	if !strings.Contains(azure, `"permissions": "0600"`) {
		t.Errorf("azure user data: the key file must be 0600:\n%s", azure)
	}
	if b, err := base64.StdEncoding.DecodeString(str("azure_base64")); err != nil || string(b) != azure {
		t.Errorf("user_data_base64 is not the base64 of user_data (%v)", err)
	}
	script := writeFile(t, "bootstrap.sh", str("script"))
	if out, err := exec.Command("sh", "-n", script).CombinedOutput(); err != nil {
		t.Errorf("sh -n on the bootstrap script: %v\n%s", err, out)
	}
	ws.Run(t, "destroy", "-auto-approve", "-input=false")
	if key, err := ctl.Client().GetJoinKey(ctx(), id); err != nil || key.State != "revoked" {
		t.Errorf("the module's join key after destroy: %+v, %v; want revoked", key, err)
	}
}

// The bootstrap computes the pin with openssl exactly as the controller does: checked on the
// real controller's CA certificate.
func TestAccModule_bootstrapPinMatchesTheController(t *testing.T) {
	ctl := acctest.Shared(t)
	caFile := filepath.Join(ctl.StateDir, "tls", "ca.crt")
	out, err := exec.Command("sh", "-c", `openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform der | sha256sum | cut -c1-64`, "sh", caFile).Output()
	if err != nil {
		t.Fatalf("the bootstrap's pin pipeline: %v", err)
	}
	if got, want := "sha256:"+strings.TrimSpace(string(out)), ctl.CAHash; got != want {
		t.Fatalf("pin of %s by the bootstrap's pipeline: got %s, want the controller's %s", caFile, got, want)
	}
}

func TestAccModule_refusesAVMWithNoWayToJoin(t *testing.T) {
	ctl := acctest.Shared(t)
	module := filepath.Join(terraformDir(), "modules", "agent-cloud-init")
	ws := acctest.NewWorkspace(t, map[string]string{"main.tf": ctl.ProviderConfig() + fmt.Sprintf(`
module "none" {
  source         = %q
  controller_url = %q
  ca_hash        = %q
}
output "ud" {
  value     = module.none.user_data
  sensitive = true
}
`, module, ctl.URL, ctl.CAHash)})
	ws.Run(t, "get")
	_, err := ws.Try("plan", "-input=false")
	if err == nil || !wrapped(`the VM has no way to join: set cloud`).MatchString(err.Error()) {
		t.Fatalf("plan of the module with neither cloud nor a key: got %v, want the precondition's message", err)
	}
}

// The README's walk-through: the demo example applied with a real Terraform, the provider built
// from source and found through dev_overrides, configured only from the environment.
func TestAccExample_demo(t *testing.T) {
	ctl := acctest.Shared(t)
	main, err := os.ReadFile(filepath.Join(terraformDir(), "examples", "demo", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	ws := acctest.NewWorkspace(t, map[string]string{"main.tf": string(main)})
	ws.Env = []string{"WEFT_ENDPOINT=" + ctl.URL, "WEFT_CA_HASH=" + ctl.CAHash, "WEFT_ADMIN_TOKEN=" + ctl.Token}
	ws.Run(t, "apply", "-auto-approve", "-input=false")
	planIsEmpty(t, ws)
	id, _ := outputs(t, ws)["join_key_id"].(string)
	if k, err := ctl.Client().GetJoinKey(ctx(), id); err != nil || k.State != "active" || k.Labels["weft:serviceaccount"] != "batch" || k.Site == nil || *k.Site != "onprem" {
		t.Errorf("join key %q on the controller: %+v, %v", id, k, err)
	}
	if _, err := ctl.Client().GetEnrollmentPolicy(ctx(), "tf-aws-web"); err != nil {
		t.Error(err)
	}
	if p, err := ctl.Client().GetPolicy(ctx(), "tf-shop-web-to-api"); err != nil || len(p.Rules) != 1 || *p.Rules[0].Ports[0].Port != 7000 {
		t.Errorf("policy tf-shop-web-to-api on the controller: %+v, %v", p, err)
	}
	ws.Run(t, "destroy", "-auto-approve", "-input=false")
	if _, err := ctl.Client().GetPolicy(ctx(), "tf-shop-web-to-api"); err == nil {
		t.Error("policy tf-shop-web-to-api still there after destroy")
	}
	if _, err := ctl.Client().GetEnrollmentPolicy(ctx(), "tf-aws-web"); err == nil {
		t.Error("enrollment policy tf-aws-web still there after destroy")
	}
	if k, _ := ctl.Client().GetJoinKey(ctx(), id); k == nil || k.State != "revoked" {
		t.Errorf("join key %s after destroy: %+v, want revoked", id, k)
	}
}

// The examples and the module are in `terraform fmt` style (the cloud examples cannot be
// validated here: their providers are not reachable; their user data is checked above).
func TestAccExamples_formatted(t *testing.T) {
	acctest.Shared(t) // needs the Terraform binary the acceptance tests use
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	for _, dir := range []string{"examples", "modules"} {
		cmd := exec.Command(tf, "fmt", "-check", "-recursive", "-diff", dir)
		cmd.Dir = terraformDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("terraform fmt -check %s: %v\n%s", dir, err, out)
		}
	}
}

// The committed docs are what tfplugindocs generates from the schema, examples/ and templates/.
func TestAccDocs_upToDate(t *testing.T) {
	acctest.Shared(t)
	out := filepath.Join(t.TempDir(), "docs")
	cmd := exec.Command("bash", filepath.Join(terraformDir(), "scripts", "gen-docs.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/gen-docs.sh: %v\n%s", err, b)
	}
	diff, err := exec.Command("diff", "-ru", filepath.Join(terraformDir(), "docs"), out).CombinedOutput()
	if err != nil {
		t.Fatalf("terraform/docs differs from what tfplugindocs generates; run terraform/scripts/gen-docs.sh and commit:\n%s", diff)
	}
}
