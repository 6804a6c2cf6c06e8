package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/weftapi"
)

// What the node resource and data sources read of a node, as Terraform values.

var nodeInstanceAttrTypes = map[string]attr.Type{"provider": types.StringType, "account": types.StringType, "id": types.StringType}

// nodeFacts are the read-only attributes of a node, shared by weft_node (resource and data
// source) and the elements of weft_nodes.
type nodeFacts struct {
	ID                 types.String
	Name               types.String
	Site               types.String
	SiteSource         types.String
	OverlayAddress     types.String
	WireguardPublicKey types.String
	Labels             types.Map
	Identity           types.String
	IdentityNumber     types.Int64
	WorkloadPrefix     types.String
	JoinKeyID          types.String
	EnrollmentPolicy   types.String
	Instance           types.Object
	EnrolledAt         types.String
	// Liveness: only the data sources show it (it changes on its own).
	Status   types.String
	LastSeen types.String
}

func nodeFactsOf(n *weftapi.Node) nodeFacts {
	f := nodeFacts{
		ID:                 types.StringValue(n.NodeID),
		Name:               types.StringValue(n.Name),
		Site:               types.StringValue(n.Site),
		SiteSource:         strFrom(n.SiteSource),
		OverlayAddress:     types.StringValue(n.OverlayAddress),
		WireguardPublicKey: types.StringValue(n.WireguardPublicKey),
		Labels:             mapValue(nonNil(n.Labels)),
		Identity:           types.StringNull(),
		IdentityNumber:     types.Int64Null(),
		WorkloadPrefix:     strFrom(n.WorkloadPrefix),
		JoinKeyID:          optString(n.JoinKeyID),
		EnrollmentPolicy:   strFrom(n.EnrollmentPolicy),
		Instance:           types.ObjectNull(nodeInstanceAttrTypes),
		EnrolledAt:         types.StringValue(n.EnrolledAt),
		Status:             types.StringValue(n.Status),
		LastSeen:           strFrom(n.LastSeen),
	}
	if n.Identity != nil {
		f.Identity = types.StringValue(n.Identity.SpiffeID)
		f.IdentityNumber = types.Int64Value(n.Identity.ID)
	}
	if n.Instance != nil {
		f.Instance = types.ObjectValueMust(nodeInstanceAttrTypes, map[string]attr.Value{
			"provider": types.StringValue(n.Instance.Provider),
			"account":  types.StringValue(n.Instance.Account),
			"id":       types.StringValue(n.Instance.ID),
		})
	}
	return f
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// nodeAttrTypes is the object type of one element of weft_nodes' `nodes`.
var nodeAttrTypes = map[string]attr.Type{
	"id": types.StringType, "name": types.StringType, "site": types.StringType, "site_source": types.StringType,
	"overlay_address": types.StringType, "wireguard_public_key": types.StringType,
	"labels": types.MapType{ElemType: types.StringType}, "identity": types.StringType, "identity_number": types.Int64Type,
	"workload_prefix": types.StringType, "join_key_id": types.StringType, "enrollment_policy": types.StringType,
	"instance": types.ObjectType{AttrTypes: nodeInstanceAttrTypes}, "enrolled_at": types.StringType,
	"status": types.StringType, "last_seen": types.StringType,
}

func (f nodeFacts) object() types.Object {
	return types.ObjectValueMust(nodeAttrTypes, map[string]attr.Value{
		"id": f.ID, "name": f.Name, "site": f.Site, "site_source": f.SiteSource, "overlay_address": f.OverlayAddress,
		"wireguard_public_key": f.WireguardPublicKey, "labels": f.Labels, "identity": f.Identity,
		"identity_number": f.IdentityNumber, "workload_prefix": f.WorkloadPrefix, "join_key_id": f.JoinKeyID,
		"enrollment_policy": f.EnrollmentPolicy, "instance": f.Instance, "enrolled_at": f.EnrolledAt,
		"status": f.Status, "last_seen": f.LastSeen,
	})
}

// nodeMatches reports whether n is in `site` (when set) and carries every label of `labels`.
func nodeMatches(n *weftapi.Node, site string, labels map[string]string) bool {
	if site != "" && n.Site != site {
		return false
	}
	for k, v := range labels {
		if got, ok := n.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
