package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/weft/weft/terraform/internal/acctest"
)

func TestMain(m *testing.M) { os.Exit(acctest.Main(m)) }

// providers serves the provider under test in-process; Terraform (the real binary named by
// TF_ACC_TERRAFORM_PATH) talks to it over the plugin protocol.
var providers = map[string]func() (tfprotov6.ProviderServer, error){
	"weft": providerserver.NewProtocol6WithError(New("test")()),
}

// emptyPlanAfterApply is the plan-is-empty check every apply step makes explicitly.
var emptyPlanAfterApply = resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}

func expectAction(addr string, action plancheck.ResourceActionType) resource.ConfigPlanChecks {
	return resource.ConfigPlanChecks{
		PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, action)},
		PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
	}
}

// writeFile writes a file the CLI reads (a policy document) into the test's temp dir.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameJSON compares what the controller stores with what a step expects, as JSON.
func sameJSON(t *testing.T, what string, got any, want string) error {
	var g, w any
	b, _ := json.Marshal(got)
	_ = json.Unmarshal(b, &g)
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON for %s: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		return fmt.Errorf("%s: got %s, want %s", what, b, want)
	}
	return nil
}

// wrapped matches pattern in Terraform's output, which wraps long messages: each space of the
// pattern matches any run of white space.
func wrapped(pattern string) *regexp.Regexp {
	return regexp.MustCompile(strings.ReplaceAll(pattern, " ", `\s+`))
}

func ctx() context.Context { return context.Background() }

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }
