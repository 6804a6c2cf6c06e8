package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/weft/weft/terraform/internal/acctest"
	"github.com/weft/weft/terraform/internal/weftapi"
)

const policyV1 = `
resource "weft_policy" "shop" {
  name        = "tf-shop"
  description = "web to api"

  rule {
    action = "allow"
    from {
      identity = "spiffe://weft.internal/ns/shop/sa/web"
    }
    to {
      namespace       = "shop"
      service_account = "api"
    }
    port {
      protocol = "tcp"
      port     = 7000
    }
  }
}
`

const policyV2 = `
resource "weft_policy" "shop" {
  name = "tf-shop"

  rule {
    action = "allow"
    from {
      labels = { tier = "app" }
    }
    from {
      identity = "spiffe://weft.internal/ns/shop/sa/web"
    }
    to {
      namespace = "shop"
    }
    port {
      protocol = "tcp"
      port     = 7000
    }
    port {
      protocol = "udp"
      port     = 9000
      end_port = 9010
    }
  }
  rule {
    action = "deny"
    from {
      cidr = "0.0.0.0/0"
    }
    to {
      namespace = "shop"
    }
  }
}
`

const policyV2JSON = `{"version":1,"name":"tf-shop","rules":[
  {"action":"allow","from":[{"labels":{"tier":"app"}},{"identity":"spiffe://weft.internal/ns/shop/sa/web"}],"to":[{"namespace":"shop"}],
   "ports":[{"protocol":"tcp","port":7000},{"protocol":"udp","port":9000,"endPort":9010}]},
  {"action":"deny","from":[{"cidr":"0.0.0.0/0"}],"to":[{"namespace":"shop"}]}]}`

// The same policy changed with the CLI: one rule, another port.
const policyDrift = `name: tf-shop
rules:
  - action: allow
    from: [{ namespace: shop, serviceAccount: web }]
    to: [{ namespace: shop }]
    ports: [{ protocol: tcp, port: 8080 }]
`

func controllerPolicy(t *testing.T, ctl *acctest.Controller, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := ctl.Client().GetPolicy(ctx(), "tf-shop")
		if err != nil {
			return err
		}
		return sameJSON(t, "policy tf-shop on the controller", got, want)
	}
}

func TestAccPolicy_lifecycle(t *testing.T) {
	ctl := acctest.Shared(t)
	cfg := func(body string) string { return ctl.ProviderConfig() + body }
	const addr = "weft_policy.shop"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{ // create
				Config:           cfg(policyV1),
				ConfigPlanChecks: expectAction(addr, plancheck.ResourceActionCreate),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "id", "tf-shop"),
					resource.TestCheckResourceAttr(addr, "rule.0.to.0.service_account", "api"),
					controllerPolicy(t, ctl, `{"version":1,"name":"tf-shop","description":"web to api","rules":[{"action":"allow",
						"from":[{"identity":"spiffe://weft.internal/ns/shop/sa/web"}],"to":[{"namespace":"shop","serviceAccount":"api"}],
						"ports":[{"protocol":"tcp","port":7000}]}]}`),
				),
			},
			{ // update in place
				Config:           cfg(policyV2),
				ConfigPlanChecks: expectAction(addr, plancheck.ResourceActionUpdate),
				Check:            controllerPolicy(t, ctl, policyV2JSON),
			},
			{ // import by name
				Config:            cfg(policyV2),
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "tf-shop",
				ImportStateVerify: true,
			},
			{ // drift: changed with the CLI, shown as an update and put back
				PreConfig:        func() { ctl.CLI(t, "policy", "apply", "-f", writeFile(t, "drift.yaml", policyDrift)) },
				Config:           cfg(policyV2),
				ConfigPlanChecks: expectAction(addr, plancheck.ResourceActionUpdate),
				Check:            controllerPolicy(t, ctl, policyV2JSON),
			},
			{ // drift: deleted with the CLI, shown as a create
				PreConfig:        func() { ctl.CLI(t, "policy", "delete", "tf-shop") },
				Config:           cfg(policyV2),
				ConfigPlanChecks: expectAction(addr, plancheck.ResourceActionCreate),
				Check:            controllerPolicy(t, ctl, policyV2JSON),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if _, err := ctl.Client().GetPolicy(ctx(), "tf-shop"); !weftapi.IsNotFound(err) {
				return fmt.Errorf("after destroy, GET /v1/policies/tf-shop: got %v, want 404", err)
			}
			return nil
		},
	})
}

// Plan-time validation: each bad value fails at plan, naming the attribute, before anything is sent.
func TestAccPolicy_planTimeValidation(t *testing.T) {
	ctl := acctest.Shared(t)
	rule := func(body string) string {
		return ctl.ProviderConfig() + fmt.Sprintf("resource \"weft_policy\" \"bad\" {\n  name = \"tf-bad\"\n  rule {\n%s\n  }\n}\n", body)
	}
	cases := []struct {
		name, config, want string
	}{
		{"port out of range", rule(`action = "allow"
    from { namespace = "a" }
    to { namespace = "b" }
    port {
      protocol = "tcp"
      port     = 70000
    }`), `rule\[0\]\.port\[0\]\.port: must be 1-65535 \(got 70000\)`},
		{"range too wide", rule(`action = "allow"
    from { namespace = "a" }
    to { namespace = "b" }
    port {
      protocol = "tcp"
      port     = 1000
      end_port = 3000
    }`), `rule\[0\]\.port\[0\]\.end_port: a range covers at most 1024 ports`},
		{"two selector kinds", rule(`action = "allow"
    from {
      namespace = "a"
      cidr      = "10.0.0.0/8"
    }
    to { namespace = "b" }`), `rule\[0\]\.from\[0\]: must set exactly one of identity, namespace`},
		{"bad spiffe id", rule(`action = "allow"
    from { identity = "spiffe://Weft/ns/a/sa/b" }
    to { namespace = "b" }`), `rule\[0\]\.from\[0\]\.identity: must be spiffe://`},
		{"bad label key", rule(`action = "allow"
    from { labels = { "bad key" = "x" } }
    to { namespace = "b" }`), `rule\[0\]\.from\[0\]\.labels\["bad key"\]: label keys are`},
		{"cidr not a network address", rule(`action = "allow"
    from { cidr = "10.1.2.3/8" }
    to { namespace = "b" }`), `rule\[0\]\.from\[0\]\.cidr: write the network address: 10\.0\.0\.0/8`},
		{"icmp with a port", rule(`action = "allow"
    from { namespace = "a" }
    to { namespace = "b" }
    port {
      protocol = "icmp"
      port     = 1
    }`), `rule\[0\]\.port\[0\]\.port: icmp has no ports`},
		{"bad action", rule(`action = "permit"
    from { namespace = "a" }
    to { namespace = "b" }`), `(?s)rule\[0\]\.action.*value must be one of`},
		{"upper-case protocol", rule(`action = "allow"
    from { namespace = "a" }
    to { namespace = "b" }
    port { protocol = "TCP" }`), `rule\[0\]\.port\[0\]\.protocol: must be one of tcp, udp, icmp, any in lower case`},
		{"no destination", rule(`action = "allow"
    from { namespace = "a" }`), `(?s)rule\[0\]\.to.*(must have a configuration value|at least 1)`},
		{"no rule", ctl.ProviderConfig() + "resource \"weft_policy\" \"bad\" {\n  name = \"tf-bad\"\n}\n", `(?s)Invalid Block.*rule.*must have a configuration value`},
		{"bad name", ctl.ProviderConfig() + `resource "weft_policy" "bad" {
  name = "Not_A_Label"
  rule {
    action = "allow"
    from { namespace = "a" }
    to { namespace = "b" }
  }
}`, `name: must be a DNS label`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: providers,
				Steps:                    []resource.TestStep{{Config: tc.config, PlanOnly: true, ExpectError: wrapped(tc.want)}},
			})
		})
	}
	if _, err := ctl.Client().GetPolicy(ctx(), "tf-bad"); !weftapi.IsNotFound(err) {
		t.Fatalf("GET /v1/policies/tf-bad after the refused plans: got %v, want 404 (nothing sent)", err)
	}
}
