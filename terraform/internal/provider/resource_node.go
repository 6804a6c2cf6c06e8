package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/weftapi"
)

var (
	_ resource.ResourceWithConfigure   = (*nodeResource)(nil)
	_ resource.ResourceWithImportState = (*nodeResource)(nil)
)

type nodeResource struct{ client *weftapi.Client }

func newNodeResource() resource.Resource { return &nodeResource{} }

type nodeModel struct {
	ID                 types.String `tfsdk:"id"`
	Name               types.String `tfsdk:"name"`
	DeleteOnDestroy    types.Bool   `tfsdk:"delete_on_destroy"`
	Site               types.String `tfsdk:"site"`
	SiteSource         types.String `tfsdk:"site_source"`
	OverlayAddress     types.String `tfsdk:"overlay_address"`
	WireguardPublicKey types.String `tfsdk:"wireguard_public_key"`
	Labels             types.Map    `tfsdk:"labels"`
	Identity           types.String `tfsdk:"identity"`
	IdentityNumber     types.Int64  `tfsdk:"identity_number"`
	WorkloadPrefix     types.String `tfsdk:"workload_prefix"`
	JoinKeyID          types.String `tfsdk:"join_key_id"`
	EnrollmentPolicy   types.String `tfsdk:"enrollment_policy"`
	Instance           types.Object `tfsdk:"instance"`
	EnrolledAt         types.String `tfsdk:"enrolled_at"`
}

func (r *nodeResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_node"
}

func (r *nodeResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	computed := func(name string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: nodeAttrDescriptions[name], PlanModifiers: keep}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "An enrolled node, taken under Terraform's management so that destroying the resource deletes the node from the overlay " +
			"(its NATS credential is revoked and it leaves every peer's WireGuard within seconds). Terraform does not enroll nodes: an agent does " +
			"(`weft up`, see the `agent-cloud-init` module). Creating this resource adopts the node already enrolled under `name`, " +
			"as `terraform import weft_node.<name> <name-or-id>` does; every other attribute is read-only.\n\n" +
			"A node deleted outside Terraform (`weft nodes delete`, or removed by the inventory because its instance was terminated) shows as a node to adopt on the next plan, " +
			"which fails until a node of that name enrolls again.",
		Attributes: map[string]schema.Attribute{
			"id": computed("id"),
			"name": schema.StringAttribute{
				Required: true, MarkdownDescription: "The name of the enrolled node to manage. Changing it deletes this node (when `delete_on_destroy`) and adopts the other.",
				Validators:    []validator.String{nameValidator()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"delete_on_destroy": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "Delete the node from the overlay when the resource is destroyed. `false` only forgets it. Default `true`.",
			},
			"site": computed("site"), "site_source": computed("site_source"), "overlay_address": computed("overlay_address"), "wireguard_public_key": computed("wireguard_public_key"),
			"labels": schema.MapAttribute{
				Computed: true, ElementType: types.StringType, MarkdownDescription: nodeAttrDescriptions["labels"],
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
			},
			"identity": computed("identity"),
			"identity_number": schema.Int64Attribute{
				Computed: true, MarkdownDescription: nodeAttrDescriptions["identity_number"],
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
			"workload_prefix": computed("workload_prefix"), "join_key_id": computed("join_key_id"), "enrollment_policy": computed("enrollment_policy"),
			"instance": schema.SingleNestedAttribute{
				Computed: true, MarkdownDescription: nodeAttrDescriptions["instance"],
				Attributes: map[string]schema.Attribute{
					"provider": schema.StringAttribute{Computed: true, MarkdownDescription: "`aws`, `azure`, `gcp` or `onprem`."},
					"account":  schema.StringAttribute{Computed: true, MarkdownDescription: "AWS account, Azure subscription, GCP project or on-prem site."},
					"id":       schema.StringAttribute{Computed: true, MarkdownDescription: "The cloud's instance id."},
				},
				PlanModifiers: []planmodifier.Object{objectplanmodifier.UseStateForUnknown()},
			},
			"enrolled_at": computed("enrolled_at"),
		},
	}
}

func (r *nodeResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Create adopts the node enrolled under the planned name.
func (r *nodeResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var plan nodeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := plan.Name.ValueString()
	n, err := r.client.GetNode(ctx, name)
	if weftapi.IsNotFound(err) {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "No such node",
			fmt.Sprintf("No node named %q is enrolled. Terraform does not enroll nodes: start an agent with `weft up` (see the agent-cloud-init module), then apply again.", name))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Reading the node failed", err.Error())
		return
	}
	if n.Name != name {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Not a node name", fmt.Sprintf("%q is the id of node %q: set name = %q.", name, n.Name, n.Name))
		return
	}
	setNodeModel(&plan, n)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *nodeResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var state nodeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	n, err := r.client.GetNode(ctx, state.ID.ValueString())
	if weftapi.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Reading the node failed", err.Error())
		return
	}
	if state.DeleteOnDestroy.IsNull() {
		state.DeleteOnDestroy = types.BoolValue(true) // after an import
	}
	setNodeModel(&state, n)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update changes only delete_on_destroy (a new name replaces the resource).
func (r *nodeResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan nodeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *nodeResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var state nodeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !state.DeleteOnDestroy.ValueBool() {
		return
	}
	if err := r.client.DeleteNode(ctx, state.ID.ValueString()); err != nil && !weftapi.IsNotFound(err) {
		resp.Diagnostics.AddError("Deleting the node failed", err.Error())
	}
}

// ImportState takes a node id or name; Read resolves it and stores the id.
func (r *nodeResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func setNodeModel(m *nodeModel, n *weftapi.Node) {
	f := nodeFactsOf(n)
	m.ID, m.Name, m.Site, m.SiteSource, m.OverlayAddress, m.WireguardPublicKey = f.ID, f.Name, f.Site, f.SiteSource, f.OverlayAddress, f.WireguardPublicKey
	m.Labels, m.Identity, m.IdentityNumber, m.WorkloadPrefix = f.Labels, f.Identity, f.IdentityNumber, f.WorkloadPrefix
	m.JoinKeyID, m.EnrollmentPolicy, m.Instance, m.EnrolledAt = f.JoinKeyID, f.EnrollmentPolicy, f.Instance, f.EnrolledAt
}
