package provider

import (
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Descriptions of a node's read-only attributes, shared by the resource and the data sources.
var nodeAttrDescriptions = map[string]string{
	"id":   "The node's id (`n-` and 16 hex digits).",
	"name": "The node's name (a DNS label, unique in the overlay).",
	"site": "The node's site: its network domain (a VPC, VNet, LAN).",
	"site_source": "What vouched for the node's site: `join-key` or `enrollment-policy` (their `site`), `network` (the instance's network in the controller's inventory `sites`) " +
		"or `request` (only the agent's word: such a node is never a gateway nor in a plaintext site); null for nodes enrolled before sites were bound.",
	"overlay_address":      "The node's overlay IPv4 address.",
	"wireguard_public_key": "The node's WireGuard public key.",
	"labels":               "The node's labels: those its join key or enrollment policy granted, and `cloud.*` labels from the inventory.",
	"identity":             "The node's SPIFFE ID.",
	"identity_number":      "The number the datapath uses for the node's identity.",
	"workload_prefix":      "The address range of the node's workloads.",
	"join_key_id":          "The join key it enrolled with; null when it joined without one.",
	"enrollment_policy":    "The enrollment policy a keyless join matched.",
	"instance":             "The cloud instance the node proved it runs on (`provider`, `account`, `id`); null when none was checked.",
	"enrolled_at":          "When the node enrolled (RFC 3339).",
	"status":               "`online`, `offline` or `never-seen`, from the node's heartbeats.",
	"last_seen":            "When the controller last heard from the node (RFC 3339).",
}

// nodeDataAttributes is a node's data source schema (all computed), for weft_node and the
// elements of weft_nodes.
func nodeDataAttributes() map[string]dschema.Attribute {
	s := func(name string) dschema.StringAttribute {
		return dschema.StringAttribute{Computed: true, MarkdownDescription: nodeAttrDescriptions[name]}
	}
	return map[string]dschema.Attribute{
		"id": s("id"), "name": s("name"), "site": s("site"), "site_source": s("site_source"), "overlay_address": s("overlay_address"),
		"wireguard_public_key": s("wireguard_public_key"),
		"labels":               dschema.MapAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: nodeAttrDescriptions["labels"]},
		"identity":             s("identity"),
		"identity_number":      dschema.Int64Attribute{Computed: true, MarkdownDescription: nodeAttrDescriptions["identity_number"]},
		"workload_prefix":      s("workload_prefix"), "join_key_id": s("join_key_id"), "enrollment_policy": s("enrollment_policy"),
		"instance": dschema.SingleNestedAttribute{Computed: true, MarkdownDescription: nodeAttrDescriptions["instance"], Attributes: map[string]dschema.Attribute{
			"provider": dschema.StringAttribute{Computed: true, MarkdownDescription: "`aws`, `azure`, `gcp` or `onprem`."},
			"account":  dschema.StringAttribute{Computed: true, MarkdownDescription: "AWS account, Azure subscription, GCP project or on-prem site."},
			"id":       dschema.StringAttribute{Computed: true, MarkdownDescription: "The cloud's instance id."},
		}},
		"enrolled_at": s("enrolled_at"), "status": s("status"), "last_seen": s("last_seen"),
	}
}
