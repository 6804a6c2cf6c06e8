package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/weft/weft/terraform/internal/acctest"
	"github.com/weft/weft/terraform/internal/weftapi"
)

const joinKeyAddr = "weft_join_key.web"

// The key admits web servers of the controller's simulated AWS account (an instance selector
// naming onprem is refused: on-prem hosts have no signed instance document).
func joinKeyConfig(labels, extra string) string {
	return fmt.Sprintf(`
resource "weft_join_key" "web" {
  description = "web servers"
  reusable    = true
  ttl_seconds = 3600
  labels      = %s
  instance_selector = {
    provider = "aws"
    account  = %q
    tags     = { role = "web" }
  }
%s
}
`, labels, acctest.AwsAccount, extra)
}

// keyAttr copies an attribute of the key in state into *into.
func keyAttr(name string, into *string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[joinKeyAddr]
		if !ok {
			return fmt.Errorf("%s is not in the state", joinKeyAddr)
		}
		*into = rs.Primary.Attributes[name]
		return nil
	}
}

// controllerKey checks what the controller lists for key *id.
func controllerKey(ctl *acctest.Controller, id *string, state string, labels map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		k, err := ctl.Client().GetJoinKey(ctx(), *id)
		if err != nil {
			return err
		}
		if k.State != state {
			return fmt.Errorf("join key %s on the controller: state %s, want %s", *id, k.State, state)
		}
		if labels != nil && fmt.Sprint(k.Labels) != fmt.Sprint(labels) {
			return fmt.Errorf("join key %s on the controller: labels %v, want %v", *id, k.Labels, labels)
		}
		return nil
	}
}

func TestAccJoinKey_lifecycle(t *testing.T) {
	ctl := acctest.Shared(t)
	cfg := func(body string) string { return ctl.ProviderConfig() + body }
	var first, second, third string
	v1 := joinKeyConfig(`{ "weft:namespace" = "shop", env = "prod" }`, "")
	v2 := joinKeyConfig(`{ "weft:namespace" = "shop", env = "prod" }`, "  recreate_if_invalid = true")
	v3 := joinKeyConfig(`{ "weft:namespace" = "shop", env = "staging" }`, "  recreate_if_invalid = true")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{ // create: the secret is in the state, once
				Config:           cfg(v1),
				ConfigPlanChecks: expectAction(joinKeyAddr, plancheck.ResourceActionCreate),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestMatchResourceAttr(joinKeyAddr, "id", regexp.MustCompile(`^[0-9a-f]{12}$`)),
					resource.TestMatchResourceAttr(joinKeyAddr, "key", regexp.MustCompile(`^weft_[0-9a-f]{12}_\S+$`)),
					resource.TestCheckResourceAttr(joinKeyAddr, "ca_hash", ctl.CAHash),
					resource.TestCheckResourceAttr(joinKeyAddr, "state", "active"),
					resource.TestCheckResourceAttr(joinKeyAddr, "uses", "0"),
					resource.TestCheckResourceAttr(joinKeyAddr, "instance_selector.tags.role", "web"),
					keyAttr("id", &first),
					controllerKey(ctl, &first, "active", map[string]string{"weft:namespace": "shop", "env": "prod"}),
				),
			},
			{ // update in place: only recreate_if_invalid can change without a new key
				Config:           cfg(v2),
				ConfigPlanChecks: expectAction(joinKeyAddr, plancheck.ResourceActionUpdate),
				Check:            resource.TestCheckResourceAttrPtr(joinKeyAddr, "id", &first),
			},
			{ // another label: a new key, the old one revoked
				Config:           cfg(v3),
				ConfigPlanChecks: expectAction(joinKeyAddr, plancheck.ResourceActionDestroyBeforeCreate),
				Check: resource.ComposeAggregateTestCheckFunc(
					keyAttr("id", &second),
					func(*terraform.State) error {
						if second == first {
							return fmt.Errorf("id after a label change: got %s again, want a new key", second)
						}
						return nil
					},
					controllerKey(ctl, &first, "revoked", nil),
					controllerKey(ctl, &second, "active", map[string]string{"weft:namespace": "shop", "env": "staging"}),
				),
			},
			{ // import by id: everything but the secret and what only creation reports
				Config:                  cfg(v3),
				ResourceName:            joinKeyAddr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"key", "ca_hash", "controller_urls", "recreate_if_invalid"},
			},
			{ // drift: revoked with the CLI, planned anew
				PreConfig:        func() { ctl.CLI(t, "keys", "revoke", second) },
				Config:           cfg(v3),
				ConfigPlanChecks: expectAction(joinKeyAddr, plancheck.ResourceActionCreate),
				Check: resource.ComposeAggregateTestCheckFunc(
					keyAttr("id", &third),
					controllerKey(ctl, &third, "active", nil),
				),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			return controllerKey(ctl, &third, "revoked", nil)(nil)
		},
	})
}

// A one-time key that an agent used is kept by default, and planned anew with recreate_if_invalid.
func TestAccJoinKey_usedOneTimeKey(t *testing.T) {
	ctl := acctest.Shared(t)
	config := ctl.ProviderConfig() + `
resource "weft_join_key" "keep" {
  labels = { role = "batch" }
}
resource "weft_join_key" "renew" {
  labels              = { role = "batch" }
  recreate_if_invalid = true
}
`
	attr := func(addr, name string, into *string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			*into = s.RootModule().Resources[addr].Primary.Attributes[name]
			return nil
		}
	}
	var keepID, keepKey, renewID, renewKey string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{
				Config:           config,
				ConfigPlanChecks: emptyPlanAfterApply,
				Check: resource.ComposeAggregateTestCheckFunc(
					attr("weft_join_key.keep", "id", &keepID), attr("weft_join_key.keep", "key", &keepKey),
					attr("weft_join_key.renew", "id", &renewID), attr("weft_join_key.renew", "key", &renewKey),
					resource.TestCheckResourceAttr("weft_join_key.keep", "reusable", "false"),
				),
			},
			{ // agents enroll with both: the default keeps the used key, recreate_if_invalid makes a new one
				PreConfig: func() {
					for name, key := range map[string]string{"tf-batch-1": keepKey, "tf-batch-2": renewKey} {
						if _, err := ctl.EnrollWithKey(key, name, "tf-site-b"); err != nil {
							t.Fatal(err)
						}
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("weft_join_key.keep", plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction("weft_join_key.renew", plancheck.ResourceActionCreate),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrPtr("weft_join_key.keep", "id", &keepID),
					resource.TestCheckResourceAttr("weft_join_key.keep", "state", "used"),
					resource.TestCheckResourceAttr("weft_join_key.keep", "uses", "1"),
					resource.TestCheckResourceAttr("weft_join_key.renew", "state", "active"),
					func(s *terraform.State) error {
						if got := s.RootModule().Resources["weft_join_key.renew"].Primary.ID; got == renewID {
							return fmt.Errorf("renewed key id: got the used key %s, want a new one", got)
						}
						return nil
					},
				),
			},
		},
	})
	for _, n := range []string{"tf-batch-1", "tf-batch-2"} {
		if err := ctl.Client().DeleteNode(ctx(), n); err != nil {
			t.Errorf("cleaning up node %s: %v", n, err)
		}
	}
}

func TestAccJoinKey_planTimeValidation(t *testing.T) {
	ctl := acctest.Shared(t)
	cases := []struct{ name, body, want string }{
		{"ttl too short", `ttl_seconds = 30`, `ttl_seconds value must be between 60 and 31536000, got: 30`},
		{"bad label key", `labels = { "bad key" = "x" }`, `labels\["bad key"\]: label keys are 1-63 letters`},
		{"identity label", `labels = { "weft:identity" = "spiffe://weft.internal/ns/Shop/sa/web" }`, `labels\["weft:identity"\]: must be spiffe://`},
		{"identity and namespace", `labels = { "weft:identity" = "spiffe://weft.internal/ns/shop/sa/web", "weft:namespace" = "shop" }`, `labels: give either weft:identity or weft:namespace/weft:serviceaccount, not both`},
		{"selector provider", `instance_selector = { provider = "ibm" }`, `instance_selector\.provider value must be one of`},
		{"on-prem selector", `instance_selector = { provider = "onprem", account = "tf-lab" }`,
			`(?s)instance_selector\.provider: onprem admits nothing: .*plain join key naming their site`},
		{"gateway without site", `labels = { "weft:gateway" = "true" }`, `(?s)site: required with the label weft:gateway = "true"`},
		{"gateway (any case) without site", `labels = { "weft:gateway" = "True", role = "edge" }`, `(?s)site: required with the label weft:gateway`},
		{"bad site", `site = "Lab_1"`, `site: must be a DNS label`},
		{"long description", "description = \"" + strings.Repeat("x", 201) + "\"", `description string length must be at most 200`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: providers,
				Steps: []resource.TestStep{{
					Config:      ctl.ProviderConfig() + "resource \"weft_join_key\" \"bad\" {\n  " + tc.body + "\n}\n",
					PlanOnly:    true,
					ExpectError: wrapped(tc.want),
				}},
			})
		})
	}
}

// A key's site places the nodes it enrolls: an agent naming none gets it (vouched by the key), one
// naming another is refused. A gateway key must name it. Changing the site makes a new key.
func TestAccJoinKey_site(t *testing.T) {
	ctl := acctest.Shared(t)
	config := func(site string) string {
		return ctl.ProviderConfig() + fmt.Sprintf(`
resource "weft_join_key" "gw" {
  description = "the tf-gw site's gateway"
  labels      = { "weft:gateway" = "true" }
  site        = %q
}
`, site)
	}
	const addr = "weft_join_key.gw"
	var first, second, key string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{ // create; the plan after it is empty
				Config:           config("tf-gw"),
				ConfigPlanChecks: expectAction(addr, plancheck.ResourceActionCreate),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "site", "tf-gw"),
					func(s *terraform.State) error {
						rs := s.RootModule().Resources[addr].Primary
						first, key = rs.ID, rs.Attributes["key"]
						k, err := ctl.Client().GetJoinKey(ctx(), first)
						if err != nil {
							return err
						}
						if k.Site == nil || *k.Site != "tf-gw" {
							return fmt.Errorf("join key %s on the controller: site %v, want tf-gw", first, k.Site)
						}
						return nil
					},
				),
			},
			{ // the key vouches for its site: an agent naming another is refused, one naming none gets it
				PreConfig: func() {
					_, err := ctl.EnrollWithKey(key, "tf-gw-1", "tf-elsewhere")
					if _, detail, _ := ctl.Refusal(err); err == nil || !strings.Contains(detail, "tf-elsewhere") || !strings.Contains(detail, "tf-gw") {
						t.Fatalf("enrolling with the tf-gw key naming site tf-elsewhere: got %v (logged: %q), want a refusal logging the site mismatch", err, detail)
					}
					n, err := ctl.EnrollWithKey(key, "tf-gw-1", "")
					if err != nil {
						t.Fatal(err)
					}
					if n.Site != "tf-gw" || n.SiteSource == nil || *n.SiteSource != "join-key" {
						t.Fatalf("node enrolled with the tf-gw key: site %q from %v, want tf-gw from join-key", n.Site, n.SiteSource)
					}
				},
				Config: config("tf-gw") + `
data "weft_node" "gw" {
  name = "tf-gw-1"
}
`,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.weft_node.gw", "site", "tf-gw"),
					resource.TestCheckResourceAttr("data.weft_node.gw", "site_source", "join-key"),
					resource.TestCheckResourceAttr(addr, "state", "used"),
				),
			},
			{ // import by id: the site comes back
				Config:                  config("tf-gw"),
				ResourceName:            addr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"key", "ca_hash", "controller_urls", "recreate_if_invalid"},
			},
			{ // another site: a new key, the old one revoked
				Config:           config("tf-gw-2"),
				ConfigPlanChecks: expectAction(addr, plancheck.ResourceActionDestroyBeforeCreate),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "site", "tf-gw-2"),
					keyAttrOf(addr, "id", &second),
					func(*terraform.State) error {
						if second == first {
							return fmt.Errorf("id after a site change: got %s again, want a new key", second)
						}
						return nil
					},
					controllerKey(ctl, &first, "revoked", nil),
					controllerKey(ctl, &second, "active", map[string]string{"weft:gateway": "true"}),
				),
			},
		},
		CheckDestroy: func(*terraform.State) error { return controllerKey(ctl, &second, "revoked", nil)(nil) },
	})
	if err := ctl.Client().DeleteNode(ctx(), "tf-gw-1"); err != nil {
		t.Errorf("cleaning up node tf-gw-1: %v", err)
	}
}

// The controller refuses what the plan-time checks refuse (so a configuration that skipped them,
// with unknown values, still fails at apply with the controller's words) and stores nothing.
func TestAccJoinKey_refusedByController(t *testing.T) {
	ctl := acctest.Shared(t)
	before, err := ctl.Client().ListJoinKeys(ctx())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		req  weftapi.JoinKeyCreateRequest
		want []string
	}{
		{"onprem selector", weftapi.JoinKeyCreateRequest{TTLSeconds: 3600, Labels: map[string]string{}, InstanceSelector: &weftapi.InstanceSelector{Provider: "onprem"}},
			[]string{"400 invalid_request: join key request is invalid: instanceSelector.provider: onprem admits nothing", "plain join key naming their site"}},
		{"gateway without site", weftapi.JoinKeyCreateRequest{TTLSeconds: 3600, Labels: map[string]string{"weft:gateway": "true"}},
			[]string{"400 invalid_request: join key request is invalid: site: required with the label weft:gateway=true"}},
	} {
		_, err := ctl.Client().CreateJoinKey(ctx(), c.req)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: POST /v1/keys: got %v, want an error containing %q", c.name, err, w)
			}
		}
	}
	after, err := ctl.Client().ListJoinKeys(ctx())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("join keys after the refusals: got %d, want %d (nothing stored)", len(after), len(before))
	}
}

// keyAttrOf copies an attribute of resource addr in state into *into.
func keyAttrOf(addr, name string, into *string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return fmt.Errorf("%s is not in the state", addr)
		}
		*into = rs.Primary.Attributes[name]
		return nil
	}
}
