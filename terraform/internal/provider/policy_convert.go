package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/weftapi"
)

// The policy resource's model and its conversions to and from the API's document.

type policyModel struct {
	ID          types.String `tfsdk:"id"`
	Name        types.String `tfsdk:"name"`
	Description types.String `tfsdk:"description"`
	Rule        types.List   `tfsdk:"rule"`
}

type ruleModel struct {
	Action types.String `tfsdk:"action"`
	From   types.List   `tfsdk:"from"`
	To     types.List   `tfsdk:"to"`
	Port   types.List   `tfsdk:"port"`
}

type selectorModel struct {
	Identity       types.String `tfsdk:"identity"`
	Namespace      types.String `tfsdk:"namespace"`
	ServiceAccount types.String `tfsdk:"service_account"`
	Labels         types.Map    `tfsdk:"labels"`
	CIDR           types.String `tfsdk:"cidr"`
}

type portModel struct {
	Protocol types.String `tfsdk:"protocol"`
	Port     types.Int64  `tfsdk:"port"`
	EndPort  types.Int64  `tfsdk:"end_port"`
}

var (
	selectorObjectType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"identity": types.StringType, "namespace": types.StringType, "service_account": types.StringType,
		"labels": types.MapType{ElemType: types.StringType}, "cidr": types.StringType,
	}}
	portObjectType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"protocol": types.StringType, "port": types.Int64Type, "end_port": types.Int64Type,
	}}
	ruleObjectType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"action": types.StringType,
		"from":   types.ListType{ElemType: selectorObjectType},
		"to":     types.ListType{ElemType: selectorObjectType},
		"port":   types.ListType{ElemType: portObjectType},
	}}
)

// policyOut is the PUT body for a (known) plan.
func policyOut(ctx context.Context, m policyModel, diags *diag.Diagnostics) weftapi.Policy {
	p := weftapi.Policy{Version: 1, Name: m.Name.ValueString(), Description: strPtr(m.Description), Rules: []weftapi.Rule{}}
	var rules []ruleModel
	diags.Append(m.Rule.ElementsAs(ctx, &rules, false)...)
	for _, r := range rules {
		rule := weftapi.Rule{Action: r.Action.ValueString(), From: selectorsOut(ctx, r.From, diags), To: selectorsOut(ctx, r.To, diags)}
		var ports []portModel
		diags.Append(r.Port.ElementsAs(ctx, &ports, false)...)
		for _, pt := range ports {
			rule.Ports = append(rule.Ports, weftapi.PortSpec{Protocol: pt.Protocol.ValueString(), Port: int64Ptr(pt.Port), EndPort: int64Ptr(pt.EndPort)})
		}
		p.Rules = append(p.Rules, rule)
	}
	return p
}

func selectorsOut(ctx context.Context, l types.List, diags *diag.Diagnostics) []weftapi.Selector {
	var sels []selectorModel
	diags.Append(l.ElementsAs(ctx, &sels, false)...)
	out := make([]weftapi.Selector, 0, len(sels))
	for _, s := range sels {
		out = append(out, weftapi.Selector{
			Identity:       strPtr(s.Identity),
			Namespace:      strPtr(s.Namespace),
			ServiceAccount: strPtr(s.ServiceAccount),
			Labels:         stringMap(ctx, s.Labels, diags),
			CIDR:           strPtr(s.CIDR),
		})
	}
	return out
}

// policyIn is the resource's state for a stored document. Absent ports and an empty list are
// both zero `port` blocks (every protocol and port).
func policyIn(ctx context.Context, p *weftapi.Policy, diags *diag.Diagnostics) *policyModel {
	rules := make([]ruleModel, 0, len(p.Rules))
	for _, r := range p.Rules {
		ports := make([]portModel, 0, len(r.Ports))
		for _, pt := range r.Ports {
			ports = append(ports, portModel{Protocol: types.StringValue(pt.Protocol), Port: int64From(pt.Port), EndPort: int64From(pt.EndPort)})
		}
		rules = append(rules, ruleModel{
			Action: types.StringValue(r.Action),
			From:   selectorsIn(ctx, r.From, diags),
			To:     selectorsIn(ctx, r.To, diags),
			Port:   listOf(ctx, portObjectType, ports, diags),
		})
	}
	return &policyModel{
		ID:          types.StringValue(p.Name),
		Name:        types.StringValue(p.Name),
		Description: strFrom(p.Description),
		Rule:        listOf(ctx, ruleObjectType, rules, diags),
	}
}

func selectorsIn(ctx context.Context, sels []weftapi.Selector, diags *diag.Diagnostics) types.List {
	out := make([]selectorModel, 0, len(sels))
	for _, s := range sels {
		out = append(out, selectorModel{
			Identity:       strFrom(s.Identity),
			Namespace:      strFrom(s.Namespace),
			ServiceAccount: strFrom(s.ServiceAccount),
			Labels:         mapValue(s.Labels),
			CIDR:           strFrom(s.CIDR),
		})
	}
	return listOf(ctx, selectorObjectType, out, diags)
}

func listOf[T any](ctx context.Context, elem attr.Type, items []T, diags *diag.Diagnostics) types.List {
	l, d := types.ListValueFrom(ctx, elem, items)
	diags.Append(d...)
	return l
}
