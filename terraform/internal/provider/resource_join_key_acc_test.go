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
)

const joinKeyAddr = "weft_join_key.web"

func joinKeyConfig(labels, extra string) string {
	return fmt.Sprintf(`
resource "weft_join_key" "web" {
  description = "web servers"
  reusable    = true
  ttl_seconds = 3600
  labels      = %s
  instance_selector = {
    provider = "onprem"
    tags     = { role = "web" }
  }
%s
}
`, labels, extra)
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
