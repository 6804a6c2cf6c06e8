package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/weft/weft/terraform/internal/acctest"
)

func TestAccDataSources(t *testing.T) {
	ctl := acctest.Shared(t)
	a1 := ctl.Enroll(t, "tf-ds-a1", "tf-ds-site-a", map[string]string{"weft:namespace": "tfds", "weft:serviceaccount": "api", "tier": "db"})
	ctl.Enroll(t, "tf-ds-a2", "tf-ds-site-a", map[string]string{"weft:namespace": "tfds", "weft:serviceaccount": "web", "tier": "app"})
	ctl.Enroll(t, "tf-ds-b1", "tf-ds-site-b", map[string]string{"weft:namespace": "tfds", "weft:serviceaccount": "api", "tier": "db"})
	config := ctl.ProviderConfig() + `
data "weft_nodes" "site_a" {
  site = "tf-ds-site-a"
}
data "weft_nodes" "db" {
  labels = { tier = "db", "weft:namespace" = "tfds" }
}
data "weft_node" "by_name" {
  name = "tf-ds-a1"
}
data "weft_node" "by_id" {
  id = data.weft_node.by_name.id
}
data "weft_identities" "tfds" {
  namespace = "tfds"
}
data "weft_inventory_instances" "web" {
  cloud = "onprem"
  tags  = { role = "web" }
  state = "running"
}
data "weft_inventory_instances" "all" {}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.weft_nodes.site_a", "names.#", "2"),
					resource.TestCheckResourceAttr("data.weft_nodes.site_a", "names.0", "tf-ds-a1"),
					resource.TestCheckResourceAttr("data.weft_nodes.site_a", "names.1", "tf-ds-a2"),
					resource.TestCheckResourceAttr("data.weft_nodes.site_a", "nodes.1.labels.tier", "app"),
					resource.TestCheckResourceAttr("data.weft_nodes.db", "names.#", "2"),
					resource.TestCheckResourceAttr("data.weft_nodes.db", "names.1", "tf-ds-b1"),
					resource.TestCheckResourceAttr("data.weft_nodes.db", "nodes.1.site", "tf-ds-site-b"),
					resource.TestCheckResourceAttr("data.weft_node.by_name", "id", a1.NodeID),
					resource.TestCheckResourceAttr("data.weft_node.by_name", "overlay_address", a1.OverlayAddress),
					resource.TestCheckResourceAttr("data.weft_node.by_name", "status", "never-seen"),
					resource.TestCheckResourceAttr("data.weft_node.by_id", "name", "tf-ds-a1"),
					resource.TestCheckResourceAttr("data.weft_node.by_id", "identity", "spiffe://weft.internal/ns/tfds/sa/api"),
					resource.TestCheckResourceAttr("data.weft_identities.tfds", "identities.#", "2"),
					resource.TestCheckResourceAttr("data.weft_identities.tfds", "identities.0.spiffe_id", "spiffe://weft.internal/ns/tfds/sa/api"),
					resource.TestCheckResourceAttr("data.weft_identities.tfds", "identities.0.number", fmt.Sprint(a1.Identity.ID)),
					resource.TestCheckResourceAttr("data.weft_identities.tfds", "identities.1.service_account", "web"),
					resource.TestCheckResourceAttr("data.weft_identities.tfds", "identities.1.trust_domain", "weft.internal"),
					resource.TestCheckResourceAttr("data.weft_inventory_instances.web", "instances.#", "1"),
					resource.TestCheckResourceAttr("data.weft_inventory_instances.web", "instances.0.id", "web-1"),
					resource.TestCheckResourceAttr("data.weft_inventory_instances.web", "instances.0.account", "tf-lab"),
					resource.TestCheckResourceAttr("data.weft_inventory_instances.web", "instances.0.network", "lan"),
					resource.TestCheckResourceAttr("data.weft_inventory_instances.web", "instances.0.private_ips.0", "10.42.0.21"),
					resource.TestCheckResourceAttr("data.weft_inventory_instances.web", "instances.0.public_ips.0", "203.0.113.21"),
					// every instance: the simulated AWS account's, then the on-prem site's
					resource.TestCheckResourceAttr("data.weft_inventory_instances.all", "instances.#", fmt.Sprint(len(acctest.AwsFleet)+3)),
					resource.TestCheckResourceAttr("data.weft_inventory_instances.all", "instances.0.id", acctest.AwsFleet[0].ID),
					resource.TestCheckResourceAttr("data.weft_inventory_instances.all", "instances.0.provider", "aws"),
					resource.TestCheckResourceAttr("data.weft_inventory_instances.all", fmt.Sprintf("instances.%d.id", len(acctest.AwsFleet)+1), "old-1"),
					resource.TestCheckResourceAttr("data.weft_inventory_instances.all", fmt.Sprintf("instances.%d.state", len(acctest.AwsFleet)+1), "stopped"),
				),
			},
			{ // a node deleted with the CLI is gone from the next read
				PreConfig: func() { ctl.CLI(t, "nodes", "delete", "tf-ds-a2") },
				Config:    config,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.weft_nodes.site_a", "names.#", "1"),
					resource.TestCheckResourceAttr("data.weft_nodes.site_a", "names.0", "tf-ds-a1"),
				),
			},
		},
	})
	for _, n := range []string{"tf-ds-a1", "tf-ds-b1"} {
		_ = ctl.Client().DeleteNode(ctx(), n)
	}
}

func TestAccDataSources_refusals(t *testing.T) {
	ctl := acctest.Shared(t)
	cases := []struct{ name, body, want string }{
		{"no such node", "data \"weft_node\" \"x\" {\n  name = \"tf-ds-nobody\"\n}\n", `Reading node "tf-ds-nobody" failed`},
		{"id and name", "data \"weft_node\" \"x\" {\n  name = \"tf-ds-a1\"\n  id = \"n-0000000000000000\"\n}\n", `Exactly one of these attributes must be configured: \[id,name\]`},
		{"bad instance state", "data \"weft_inventory_instances\" \"x\" {\n  state = \"gone\"\n}\n", `state value must be one of`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: providers,
				Steps:                    []resource.TestStep{{Config: ctl.ProviderConfig() + tc.body, ExpectError: wrapped(tc.want)}},
			})
		})
	}
}
