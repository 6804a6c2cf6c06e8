package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/weft/weft/terraform/internal/acctest"
	"github.com/weft/weft/terraform/internal/weftapi"
)

const enrollmentPolicyAddr = "weft_enrollment_policy.web"

// The policy selects web servers of the controller's simulated AWS account (acctest.AwsFleet).
func enrollmentPolicyConfig(tags, labels string) string {
	return fmt.Sprintf(`
resource "weft_enrollment_policy" "web" {
  name        = "tf-web"
  description = "web servers of the tf-acc AWS account"
  selector = {
    provider = "aws"
    account  = %q
    tags     = %s
  }
  labels = %s
}
`, acctest.AwsAccount, tags, labels)
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
	v2JSON := `{"name":"tf-web","description":"web servers of the tf-acc AWS account","selector":{"provider":"aws","account":"` + acctest.AwsAccount + `","tags":{"role":"web","env":"test"}},
		"labels":{"weft:namespace":"shop","weft:serviceaccount":"frontend"}}`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{ // create
				Config:           cfg(v1),
				ConfigPlanChecks: expectAction(enrollmentPolicyAddr, plancheck.ResourceActionCreate),
				Check: controllerEnrollmentPolicy(t, ctl, `{"name":"tf-web","description":"web servers of the tf-acc AWS account",
					"selector":{"provider":"aws","account":"`+acctest.AwsAccount+`","tags":{"role":"web"}},"labels":{"weft:namespace":"shop","weft:serviceaccount":"web"}}`),
			},
			{ // update in place
				Config:           cfg(v2),
				ConfigPlanChecks: expectAction(enrollmentPolicyAddr, plancheck.ResourceActionUpdate),
				Check:            controllerEnrollmentPolicy(t, ctl, v2JSON),
			},
			{ // the policy admits the instance it selects: a keyless enrollment, presenting the
				// instance's signed identity document, gets its labels; an instance it does not select
				// (role=web, env=old) is refused
				Config:           cfg(v2),
				ConfigPlanChecks: emptyPlanAfterApply,
				Check: func(*terraform.State) error {
					_, err := ctl.EnrollKeyless("tf-web-2", "127.0.42.31")
					if err == nil || !strings.Contains(err.Error(), "403 instance_rejected") || !strings.Contains(err.Error(), "tf-web: tags.env: want test, instance has old") {
						return fmt.Errorf("keyless enrollment of the env=old web server: got %v, want 403 instance_rejected naming tf-web's tags.env mismatch", err)
					}
					n, err := ctl.EnrollKeyless("tf-web-1", "127.0.42.21")
					if err != nil {
						return err
					}
					wantInstance := acctest.AwsFleet[1].ID
					if n.EnrollmentPolicy == nil || *n.EnrollmentPolicy != "tf-web" || n.Identity == nil || n.Identity.SpiffeID != "spiffe://weft.internal/ns/shop/sa/frontend" ||
						n.Instance == nil || n.Instance.Provider != "aws" || n.Instance.ID != wantInstance {
						return fmt.Errorf("keyless node: enrollment policy %v, identity %+v, instance %+v; want tf-web, spiffe://weft.internal/ns/shop/sa/frontend and aws %s",
							n.EnrollmentPolicy, n.Identity, n.Instance, wantInstance)
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
					ctl.CLI(t, "enrollment-policy", "apply", "--name", "tf-web", "--provider", "aws", "--tag", "role=db", "--label", "weft:namespace=db")
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
		{"on-prem selector", `name = "tf-bad"
  selector = { provider = "onprem", account = "tf-lab" }`, `(?s)selector\.provider: onprem admits nothing: .*enroll on-prem hosts with a join key`},
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

// An on-prem selector can never admit anything (no signed instance document): the controller
// refuses such a policy, with what to do instead, and stores nothing; the provider refuses it at
// plan time with the same words (planTimeValidation) and passes the controller's on through.
func TestAccEnrollmentPolicy_onpremRefusedByController(t *testing.T) {
	ctl := acctest.Shared(t)
	_, err := ctl.Client().PutEnrollmentPolicy(ctx(), weftapi.EnrollmentPolicy{
		Name: "tf-onprem", Selector: weftapi.EnrollmentSelector{Provider: "onprem"}, Labels: map[string]string{},
	})
	want := "400 invalid_request: enrollment policy is invalid: selector.provider: onprem admits nothing"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "enroll on-prem hosts with a join key") {
		t.Fatalf("PUT an enrollment policy selecting onprem: got %v, want an error containing %q and the join-key advice", err, want)
	}
	if _, err := ctl.Client().GetEnrollmentPolicy(ctx(), "tf-onprem"); !weftapi.IsNotFound(err) {
		t.Fatalf("after the refusal, GET /v1/enrollment-policies/tf-onprem: got %v, want 404", err)
	}
}
