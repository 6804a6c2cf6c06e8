package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

var (
	_ resource.ResourceWithConfigure   = (*enrollmentPolicyResource)(nil)
	_ resource.ResourceWithImportState = (*enrollmentPolicyResource)(nil)
)

type enrollmentPolicyResource struct{ client *weftapi.Client }

func newEnrollmentPolicyResource() resource.Resource { return &enrollmentPolicyResource{} }

type enrollmentPolicyModel struct {
	ID          types.String `tfsdk:"id"`
	Name        types.String `tfsdk:"name"`
	Description types.String `tfsdk:"description"`
	Selector    types.Object `tfsdk:"selector"`
	Site        types.String `tfsdk:"site"`
	Labels      types.Map    `tfsdk:"labels"`
}

func (r *enrollmentPolicyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_enrollment_policy"
}

func (r *enrollmentPolicyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An enrollment policy: lets cloud instances join with no shared secret. An agent started with `--cloud aws|azure|gcp` (or `weft up --cloud …`) " +
			"presents its instance identity; when the instance is in the controller's inventory, running, enrolls from one of its addresses and matches this policy's selector, " +
			"it is enrolled with the policy's labels. Policies are tried in name order; the first that matches wins. " +
			"Changes are applied in place (`PUT /v1/enrollment-policies/<name>`); nodes enrolled through a policy stay when it is changed or destroyed.",
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
			"selector": schema.SingleNestedAttribute{
				Required: true,
				MarkdownDescription: "Which inventory instances may join: `provider` is required, so a policy never spans every cloud by accident; " +
					"each other attribute given must equal the inventory's record.",
				Attributes: instanceSelectorAttributes(true),
			},
			"site": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The site of the nodes the policy admits (a DNS label): an agent naming another site is refused, one naming none gets this one. " +
					"Unset: their instance's network's site (the controller's inventory `sites`), else the agent's own word, and such a node is never a gateway. " +
					"Changed in place; nodes already enrolled keep their site.",
				Validators: []validator.String{siteValidator()},
			},
			"labels": schema.MapAttribute{
				Optional: true, Computed: true, ElementType: types.StringType,
				Default:             mapdefault.StaticValue(types.MapValueMust(types.StringType, map[string]attr.Value{})),
				MarkdownDescription: "Labels granted to the nodes it enrolls, as a join key's `labels` (identity labels included). The inventory adds `cloud.*` labels of its own.",
				Validators:          []validator.Map{labelsCheck{}},
			},
		},
	}
}

func (r *enrollmentPolicyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *enrollmentPolicyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	r.put(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics)
}

func (r *enrollmentPolicyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.put(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics)
}

type stateSetter interface {
	Set(context.Context, any) diag.Diagnostics
}

func (r *enrollmentPolicyResource) put(ctx context.Context, get func(context.Context, any) diag.Diagnostics, state stateSetter, diags *diag.Diagnostics) {
	if !ready(r.client, diags) {
		return
	}
	var plan enrollmentPolicyModel
	diags.Append(get(ctx, &plan)...)
	if diags.HasError() {
		return
	}
	body := enrollmentPolicyOut(ctx, plan, diags)
	if diags.HasError() {
		return
	}
	stored, err := r.client.PutEnrollmentPolicy(ctx, body)
	if err != nil {
		diags.AddError("Applying the enrollment policy failed", err.Error())
		return
	}
	diags.Append(state.Set(ctx, enrollmentPolicyIn(stored))...)
}

func (r *enrollmentPolicyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var state enrollmentPolicyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	got, err := r.client.GetEnrollmentPolicy(ctx, state.ID.ValueString())
	if weftapi.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Reading the enrollment policy failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, enrollmentPolicyIn(got))...)
}

func (r *enrollmentPolicyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var state enrollmentPolicyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := r.client.DeleteEnrollmentPolicy(ctx, state.ID.ValueString()); err != nil && !weftapi.IsNotFound(err) {
		resp.Diagnostics.AddError("Deleting the enrollment policy failed", err.Error())
	}
}

func (r *enrollmentPolicyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func enrollmentPolicyOut(ctx context.Context, m enrollmentPolicyModel, diags *diag.Diagnostics) weftapi.EnrollmentPolicy {
	labels := stringMap(ctx, m.Labels, diags)
	if labels == nil {
		labels = map[string]string{}
	}
	p := weftapi.EnrollmentPolicy{Name: m.Name.ValueString(), Description: strPtr(m.Description), Site: strPtr(m.Site), Labels: labels}
	if s := instanceSelectorOut(ctx, m.Selector, diags); s != nil {
		p.Selector = weftapi.EnrollmentSelector(*s)
	}
	return p
}

func enrollmentPolicyIn(p *weftapi.EnrollmentPolicy) *enrollmentPolicyModel {
	labels := p.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return &enrollmentPolicyModel{
		ID:          types.StringValue(p.Name),
		Name:        types.StringValue(p.Name),
		Description: strFrom(p.Description),
		Selector:    instanceSelectorIn((*weftapi.InstanceSelector)(&p.Selector)),
		Site:        strFrom(p.Site),
		Labels:      mapValue(labels),
	}
}
