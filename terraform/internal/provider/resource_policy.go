package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

var (
	_ resource.ResourceWithConfigure      = (*policyResource)(nil)
	_ resource.ResourceWithImportState    = (*policyResource)(nil)
	_ resource.ResourceWithValidateConfig = (*policyResource)(nil)
)

type policyResource struct{ client *weftapi.Client }

func newPolicyResource() resource.Resource { return &policyResource{} }

func (r *policyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_policy"
}

func selectorBlock(role string) schema.ListNestedBlock {
	return schema.ListNestedBlock{
		MarkdownDescription: role + " (at least one block; any of them matches). Each sets exactly one of `identity`, `namespace` (with an optional `service_account`), `labels` or `cidr`.",
		Validators:          []validator.List{listvalidator.IsRequired(), listvalidator.SizeAtLeast(1)},
		NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
			"identity":        schema.StringAttribute{Optional: true, MarkdownDescription: "One SPIFFE ID: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`."},
			"namespace":       schema.StringAttribute{Optional: true, MarkdownDescription: "Every identity of a SPIFFE namespace (a DNS label), or one service account in it with `service_account`."},
			"service_account": schema.StringAttribute{Optional: true, MarkdownDescription: "With `namespace`: only this service account."},
			"labels": schema.MapAttribute{
				Optional: true, ElementType: types.StringType,
				MarkdownDescription: "The identities of nodes carrying all of these labels (at least one). Node labels select node identities only, not workloads.",
			},
			"cidr": schema.StringAttribute{Optional: true, MarkdownDescription: "Addresses outside the overlay, as an IPv4 CIDR written as its network address (`10.0.0.0/8`)."},
		}},
	}
}

func (r *policyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A policy: `allow` and `deny` rules from sources to destinations, optionally limited to protocols and ports, the same document `weft policy apply -f` takes. " +
			"Each `rule` block is one entry of the YAML's `rules`, each `from`/`to` block one selector, each `port` block one entry of `ports`. " +
			"Destinations that any rule targets become default-deny; an explicit deny wins over an allow. Changes are applied in place (`PUT /v1/policies/<name>`) " +
			"and reach every node's datapath within a second.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, MarkdownDescription: "The policy's name.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true, MarkdownDescription: "The policy's name: a DNS label (lowercase letters, digits and `-`). Changing it makes a new policy.",
				Validators:    []validator.String{nameValidator()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"description": schema.StringAttribute{
				Optional: true, MarkdownDescription: "What the policy is for (at most 200 characters).",
				Validators: []validator.String{stringvalidator.LengthAtMost(validate.DescriptionMaxLength)},
			},
		},
		Blocks: map[string]schema.Block{
			"rule": schema.ListNestedBlock{
				MarkdownDescription: fmt.Sprintf("A rule (1 to %d, in order).", validate.RulesMax),
				Validators:          []validator.List{listvalidator.IsRequired(), listvalidator.SizeBetween(1, validate.RulesMax)},
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"action": schema.StringAttribute{
							Required: true, MarkdownDescription: "`allow` or `deny`.",
							Validators: []validator.String{stringvalidator.OneOf(validate.Actions...)},
						},
					},
					Blocks: map[string]schema.Block{
						"from": selectorBlock("Sources: traffic from what they select"),
						"to":   selectorBlock("Destinations: the rule is enforced on ingress at the nodes whose identities (or workloads') they select"),
						"port": schema.ListNestedBlock{
							MarkdownDescription: fmt.Sprintf("Protocols and ports the rule covers (at most %d); none means every protocol and port.", validate.PortsPerRuleMax),
							NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
								"protocol": schema.StringAttribute{Required: true, MarkdownDescription: "`tcp`, `udp`, `icmp` or `any` (with a port: tcp and udp)."},
								"port":     schema.Int64Attribute{Optional: true, MarkdownDescription: "Destination port, 1-65535; none means every port of the protocol. Not with icmp."},
								"end_port": schema.Int64Attribute{Optional: true, MarkdownDescription: fmt.Sprintf("Last port of a range starting at `port` (inclusive, at most %d ports).", validate.PortRangeMaxPorts)},
							}},
						},
					},
				},
			},
		},
	}
}

// ValidateConfig checks the rules as the controller does (selector shapes, ports, ranges).
func (r *policyResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m policyModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	validatePolicyModel(ctx, m, &resp.Diagnostics)
}

func (r *policyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *policyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	r.put(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics)
}

func (r *policyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.put(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics)
}

func (r *policyResource) put(ctx context.Context, get func(context.Context, any) diag.Diagnostics, state stateSetter, diags *diag.Diagnostics) {
	if !ready(r.client, diags) {
		return
	}
	var plan policyModel
	diags.Append(get(ctx, &plan)...)
	if diags.HasError() {
		return
	}
	body := policyOut(ctx, plan, diags)
	if diags.HasError() {
		return
	}
	stored, err := r.client.PutPolicy(ctx, body)
	if err != nil {
		diags.AddError("Applying the policy failed", err.Error())
		return
	}
	diags.Append(state.Set(ctx, policyIn(ctx, stored, diags))...)
}

func (r *policyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var state policyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	got, err := r.client.GetPolicy(ctx, state.ID.ValueString())
	if weftapi.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Reading the policy failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, policyIn(ctx, got, &resp.Diagnostics))...)
}

func (r *policyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var state policyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.client.DeletePolicy(ctx, state.ID.ValueString()); err != nil && !weftapi.IsNotFound(err) {
		resp.Diagnostics.AddError("Deleting the policy failed", err.Error())
	}
}

func (r *policyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// validatePolicyModel reports every rule problem at its attribute; parts not known yet are skipped.
func validatePolicyModel(ctx context.Context, m policyModel, diags *diag.Diagnostics) {
	if m.Rule.IsNull() || m.Rule.IsUnknown() {
		return
	}
	var rules []ruleModel
	diags.Append(m.Rule.ElementsAs(ctx, &rules, false)...)
	for i, rule := range rules {
		base := path.Root("rule").AtListIndex(i)
		readable := fmt.Sprintf("rule[%d]", i)
		for _, side := range []struct {
			name string
			list types.List
		}{{"from", rule.From}, {"to", rule.To}} {
			if side.list.IsNull() || side.list.IsUnknown() {
				continue
			}
			var sels []selectorModel
			diags.Append(side.list.ElementsAs(ctx, &sels, false)...)
			for j, s := range sels {
				sel, known := selectorForCheck(ctx, s, diags)
				if known {
					addProblems(diags, base.AtName(side.name).AtListIndex(j), fmt.Sprintf("%s.%s[%d]", readable, side.name, j), validate.SelectorShape(sel))
				}
			}
		}
		if rule.Port.IsNull() || rule.Port.IsUnknown() {
			continue
		}
		var ports []portModel
		diags.Append(rule.Port.ElementsAs(ctx, &ports, false)...)
		checked := make([]validate.Port, 0, len(ports))
		for _, p := range ports {
			if p.Protocol.IsUnknown() || p.Port.IsUnknown() || p.EndPort.IsUnknown() {
				checked = nil
				break
			}
			checked = append(checked, validate.Port{Protocol: p.Protocol.ValueString(), Port: int64Ptr(p.Port), EndPort: int64Ptr(p.EndPort)})
		}
		if checked != nil {
			addProblems(diags, base.AtName("port"), readable+".port", validate.Ports(checked))
		}
	}
}

func selectorForCheck(ctx context.Context, s selectorModel, diags *diag.Diagnostics) (validate.Selector, bool) {
	if s.Identity.IsUnknown() || s.Namespace.IsUnknown() || s.ServiceAccount.IsUnknown() || s.CIDR.IsUnknown() || !knownMap(s.Labels) {
		return validate.Selector{}, false
	}
	return validate.Selector{
		Identity:       strPtr(s.Identity),
		Namespace:      strPtr(s.Namespace),
		ServiceAccount: strPtr(s.ServiceAccount),
		Labels:         stringMap(ctx, s.Labels, diags),
		CIDR:           strPtr(s.CIDR),
	}, true
}
