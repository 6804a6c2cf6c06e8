package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/weft/weft/terraform/internal/acctest"
	"github.com/weft/weft/terraform/internal/weftapi"
)

const nodeAddr = "weft_node.app"

func TestAccNode_lifecycle(t *testing.T) {
	ctl := acctest.Shared(t)
	enrolled := ctl.Enroll(t, "tf-app-1", "tf-site-a", map[string]string{"weft:namespace": "tfapp", "tier": "app"})
	config := func(extra string) string {
		return ctl.ProviderConfig() + fmt.Sprintf("resource \"weft_node\" \"app\" {\n  name = \"tf-app-1\"\n%s\n}\n", extra)
	}
	var reenrolled weftapi.Node
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{ // create: adopts the enrolled node, every attribute read from the controller
				Config:           config(""),
				ConfigPlanChecks: expectAction(nodeAddr, plancheck.ResourceActionCreate),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(nodeAddr, "id", enrolled.NodeID),
					resource.TestCheckResourceAttr(nodeAddr, "site", "tf-site-a"),
					resource.TestCheckResourceAttr(nodeAddr, "overlay_address", enrolled.OverlayAddress),
					resource.TestCheckResourceAttr(nodeAddr, "wireguard_public_key", enrolled.WireguardPublicKey),
					resource.TestCheckResourceAttr(nodeAddr, "labels.tier", "app"),
					resource.TestCheckResourceAttr(nodeAddr, "identity", "spiffe://weft.internal/ns/tfapp/sa/default"),
					resource.TestCheckResourceAttr(nodeAddr, "identity_number", fmt.Sprint(enrolled.Identity.ID)),
					resource.TestCheckResourceAttr(nodeAddr, "join_key_id", enrolled.JoinKeyID),
					resource.TestCheckResourceAttr(nodeAddr, "delete_on_destroy", "true"),
				),
			},
			{ // update in place: only delete_on_destroy is an argument
				Config:           config("  delete_on_destroy = false"),
				ConfigPlanChecks: expectAction(nodeAddr, plancheck.ResourceActionUpdate),
				Check:            resource.TestCheckResourceAttr(nodeAddr, "delete_on_destroy", "false"),
			},
			{ // import by name
				Config:                  config("  delete_on_destroy = false"),
				ResourceName:            nodeAddr,
				ImportState:             true,
				ImportStateId:           "tf-app-1",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"delete_on_destroy"},
			},
			{ // import by id
				Config:                  config("  delete_on_destroy = false"),
				ResourceName:            nodeAddr,
				ImportState:             true,
				ImportStateId:           enrolled.NodeID,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"delete_on_destroy"},
			},
			{ // drift: deleted with the CLI and enrolled again (a new id): planned as a node to adopt
				PreConfig: func() {
					ctl.CLI(t, "nodes", "delete", "tf-app-1")
					reenrolled = ctl.Enroll(t, "tf-app-1", "tf-site-a", map[string]string{"weft:namespace": "tfapp", "tier": "app"})
				},
				Config:           config(""),
				ConfigPlanChecks: expectAction(nodeAddr, plancheck.ResourceActionCreate),
				Check: func(s *terraform.State) error {
					if got := s.RootModule().Resources[nodeAddr].Primary.ID; got != reenrolled.NodeID || got == enrolled.NodeID {
						return fmt.Errorf("id after re-enrollment: got %s, want the new node %s (old %s)", got, reenrolled.NodeID, enrolled.NodeID)
					}
					return nil
				},
			},
		},
		// destroy deletes the node from the overlay
		CheckDestroy: func(*terraform.State) error {
			if _, err := ctl.Client().GetNode(ctx(), "tf-app-1"); !weftapi.IsNotFound(err) {
				return fmt.Errorf("after destroy, GET /v1/nodes/tf-app-1: got %v, want 404", err)
			}
			return nil
		},
	})
}

func TestAccNode_forgetWithoutDeleting(t *testing.T) {
	ctl := acctest.Shared(t)
	enrolled := ctl.Enroll(t, "tf-keep-1", "tf-site-a", nil)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{{
			Config:           ctl.ProviderConfig() + "resource \"weft_node\" \"keep\" {\n  name = \"tf-keep-1\"\n  delete_on_destroy = false\n}\n",
			ConfigPlanChecks: emptyPlanAfterApply,
		}},
		CheckDestroy: func(*terraform.State) error {
			if _, err := ctl.Client().GetNode(ctx(), enrolled.NodeID); err != nil {
				return fmt.Errorf("after destroy with delete_on_destroy = false: GET the node: %v, want it still enrolled", err)
			}
			return ctl.Client().DeleteNode(ctx(), enrolled.NodeID)
		},
	})
}

func TestAccNode_refusals(t *testing.T) {
	ctl := acctest.Shared(t)
	enrolled := ctl.Enroll(t, "tf-ref-1", "tf-site-a", nil)
	t.Cleanup(func() { _ = ctl.Client().DeleteNode(ctx(), enrolled.NodeID) })
	cases := []struct{ name, body, want string }{
		{"not enrolled", `name = "tf-nobody"`, `No node named "tf-nobody" is enrolled`},
		{"an id is not a name", fmt.Sprintf("name = %q", enrolled.NodeID), fmt.Sprintf(`%q is the id of node "tf-ref-1"`, enrolled.NodeID)},
		{"bad name at plan", `name = "Not A Name"`, `name: must be a DNS label`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: providers,
				Steps: []resource.TestStep{{
					Config:      ctl.ProviderConfig() + "resource \"weft_node\" \"x\" {\n  " + tc.body + "\n}\n",
					ExpectError: wrapped(regexp.QuoteMeta(tc.want)),
				}},
			})
		})
	}
}
