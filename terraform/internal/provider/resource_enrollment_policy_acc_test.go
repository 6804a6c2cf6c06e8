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

const enrollmentPolicyAddr = "weft_enrollment_policy.web"

func enrollmentPolicyConfig(tags, labels string) string {
	return fmt.Sprintf(`
resource "weft_enrollment_policy" "web" {
  name        = "tf-web"
  description = "web servers of the tf-lab site"
  selector = {
    provider = "onprem"
    account  = "tf-lab"
    tags     = %s
  }
  labels = %s
}
`, tags, labels)
}

func controllerEnrollmentPolicy(t *testing.T, ctl *acctest.Controller, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := ctl.Client().GetEnrollmentPolicy(ctx(), "tf-web")
		if err != nil {
			return err
		}
		return sameJSON(t, "enrollment policy tf-web on the controller", got, want)
	}
}

func TestAccEnrollmentPolicy_lifecycle(t *testing.T) {
	ctl := acctest.Shared(t)
	cfg := func(body string) string { return ctl.ProviderConfig() + body }
	v1 := enrollmentPolicyConfig(`{ role = "web" }`, `{ "weft:namespace" = "shop", "weft:serviceaccount" = "web" }`)
	v2 := enrollmentPolicyConfig(`{ role = "web", env = "test" }`, `{ "weft:namespace" = "shop", "weft:serviceaccount" = "frontend" }`)
	const v2JSON = `{"name":"tf-web","description":"web servers of the tf-lab site","selector":{"provider":"onprem","account":"tf-lab","tags":{"role":"web","env":"test"}},
		"labels":{"weft:namespace":"shop","weft:serviceaccount":"frontend"}}`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{ // create
				Config:           cfg(v1),
				ConfigPlanChecks: expectAction(enrollmentPolicyAddr, plancheck.ResourceActionCreate),
				Check: controllerEnrollmentPolicy(t, ctl, `{"name":"tf-web","description":"web servers of the tf-lab site",
					"selector":{"provider":"onprem","account":"tf-lab","tags":{"role":"web"}},"labels":{"weft:namespace":"shop","weft:serviceaccount":"web"}}`),
			},
			{ // update in place
				Config:           cfg(v2),
				ConfigPlanChecks: expectAction(enrollmentPolicyAddr, plancheck.ResourceActionUpdate),
				Check:            controllerEnrollmentPolicy(t, ctl, v2JSON),
			},
			{ // the policy admits the instance it selects: a keyless enrollment gets its labels
				Config:           cfg(v2),
				ConfigPlanChecks: emptyPlanAfterApply,
				Check: func(*terraform.State) error {
					n, err := ctl.EnrollKeyless("tf-web-1", "web-1", "10.42.0.21")
					if err != nil {
						return err
					}
					if n.EnrollmentPolicy == nil || *n.EnrollmentPolicy != "tf-web" || n.Identity == nil || n.Identity.SpiffeID != "spiffe://weft.internal/ns/shop/sa/frontend" {
						return fmt.Errorf("keyless node: enrollment policy %v, identity %+v; want tf-web and spiffe://weft.internal/ns/shop/sa/frontend", n.EnrollmentPolicy, n.Identity)
					}
					return ctl.Client().DeleteNode(ctx(), n.NodeID)
				},
			},
			{ // import by name
				Config:            cfg(v2),
				ResourceName:      enrollmentPolicyAddr,
				ImportState:       true,
				ImportStateId:     "tf-web",
				ImportStateVerify: true,
			},
			{ // drift: replaced with the CLI, shown as an update and put back
				PreConfig: func() {
					ctl.CLI(t, "enrollment-policy", "apply", "--name", "tf-web", "--provider", "onprem", "--tag", "role=db", "--label", "weft:namespace=db")
				},
				Config:           cfg(v2),
				ConfigPlanChecks: expectAction(enrollmentPolicyAddr, plancheck.ResourceActionUpdate),
				Check:            controllerEnrollmentPolicy(t, ctl, v2JSON),
			},
			{ // drift: deleted with the CLI, shown as a create
				PreConfig:        func() { ctl.CLI(t, "enrollment-policy", "delete", "tf-web") },
				Config:           cfg(v2),
				ConfigPlanChecks: expectAction(enrollmentPolicyAddr, plancheck.ResourceActionCreate),
				Check:            controllerEnrollmentPolicy(t, ctl, v2JSON),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if _, err := ctl.Client().GetEnrollmentPolicy(ctx(), "tf-web"); !weftapi.IsNotFound(err) {
				return fmt.Errorf("after destroy, GET /v1/enrollment-policies/tf-web: got %v, want 404", err)
			}
			return nil
		},
	})
}

func TestAccEnrollmentPolicy_planTimeValidation(t *testing.T) {
	ctl := acctest.Shared(t)
	cases := []struct{ name, body, want string }{
		{"no provider", `name = "tf-bad"
  selector = { account = "tf-lab" }`, `(?s)selector.*provider.*required`},
		{"bad name", `name = "tf_bad"
  selector = { provider = "aws" }`, `name: must be a DNS label`},
		{"service account label", `name = "tf-bad"
  selector = { provider = "aws" }
  labels = { "weft:serviceaccount" = "Web" }`, `labels\["weft:serviceaccount"\]: must be a DNS label`},
		{"workload namespaces label", `name = "tf-bad"
  selector = { provider = "aws" }
  labels = { "weft:workload-namespaces" = "a,,b" }`, `labels\["weft:workload-namespaces"\]: must be \* or comma-separated namespaces`},
		{"empty tag key", `name = "tf-bad"
  selector = { provider = "aws", tags = { "" = "x" } }`, `selector\.tags.*length must be between 1 and 256`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: providers,
				Steps: []resource.TestStep{{
					Config:      ctl.ProviderConfig() + "resource \"weft_enrollment_policy\" \"bad\" {\n  " + tc.body + "\n}\n",
					PlanOnly:    true,
					ExpectError: wrapped(tc.want),
				}},
			})
		})
	}
}
