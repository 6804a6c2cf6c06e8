package provider

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

var (
	_ resource.ResourceWithConfigure      = (*joinKeyResource)(nil)
	_ resource.ResourceWithImportState    = (*joinKeyResource)(nil)
	_ resource.ResourceWithValidateConfig = (*joinKeyResource)(nil)
)

type joinKeyResource struct{ client *weftapi.Client }

func newJoinKeyResource() resource.Resource { return &joinKeyResource{} }

type joinKeyModel struct {
	ID                types.String `tfsdk:"id"`
	Description       types.String `tfsdk:"description"`
	Reusable          types.Bool   `tfsdk:"reusable"`
	TTLSeconds        types.Int64  `tfsdk:"ttl_seconds"`
	Labels            types.Map    `tfsdk:"labels"`
	Site              types.String `tfsdk:"site"`
	InstanceSelector  types.Object `tfsdk:"instance_selector"`
	RecreateIfInvalid types.Bool   `tfsdk:"recreate_if_invalid"`
	Key               types.String `tfsdk:"key"`
	CAHash            types.String `tfsdk:"ca_hash"`
	ControllerURLs    types.List   `tfsdk:"controller_urls"`
	CreatedAt         types.String `tfsdk:"created_at"`
	ExpiresAt         types.String `tfsdk:"expires_at"`
	State             types.String `tfsdk:"state"`
	Uses              types.Int64  `tfsdk:"uses"`
}

func (r *joinKeyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_join_key"
}

func (r *joinKeyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A join key: the secret an agent presents to enroll (`weft agent --join-key`, or `weft up --join-key-file`). " +
			"The controller stores only its hash, so the secret (`key`) is known only to the Terraform state that created it: it is never read back, " +
			"and an imported key has none. A key cannot be changed: changing any argument makes a new key (and revokes the old one). " +
			"Destroying the resource revokes the key; nodes already enrolled with it stay.\n\n" +
			"A key revoked outside Terraform (`weft keys revoke`) shows as a key to create on the next plan; " +
			"an expired or used one-time key does too when `recreate_if_invalid` is set.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true, MarkdownDescription: "The key's id (12 hex digits), the part of the key before the secret.",
				PlanModifiers: keep,
			},
			"description": schema.StringAttribute{
				Optional: true, MarkdownDescription: "What the key is for (at most 200 characters).",
				Validators:    []validator.String{stringvalidator.LengthAtMost(validate.DescriptionMaxLength)},
				PlanModifiers: replace,
			},
			"reusable": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Whether many nodes may enroll with the key. Default `false`: the first enrollment uses it up.",
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.RequiresReplace()},
			},
			"ttl_seconds": schema.Int64Attribute{
				Optional: true, Computed: true, Default: int64default.StaticInt64(validate.DefaultJoinKeyTTL),
				MarkdownDescription: fmt.Sprintf("Lifetime from creation, in seconds: %d (a minute) to %d (a year). Default %d (24 h).", validate.TTLMinSeconds, validate.TTLMaxSeconds, validate.DefaultJoinKeyTTL),
				Validators:          []validator.Int64{int64validator.Between(validate.TTLMinSeconds, validate.TTLMaxSeconds)},
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()},
			},
			"labels": schema.MapAttribute{
				Optional: true, Computed: true, ElementType: types.StringType,
				Default: mapdefault.StaticValue(types.MapValueMust(types.StringType, map[string]attr.Value{})),
				MarkdownDescription: "Labels granted to the nodes enrolled with the key. `weft:identity` (a whole SPIFFE ID in the controller's trust domain) " +
					"or `weft:namespace` / `weft:serviceaccount` set the nodes' identity; `weft:gateway = \"true\"` makes them their site's gateway; " +
					"`weft:workload-namespaces` (comma-separated, or `*`) the namespaces their workloads may use.",
				Validators:    []validator.Map{labelsCheck{}},
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"site": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The site of every node enrolled with the key (a DNS label): an agent naming another site is refused, one naming none gets this one. " +
					"Required when `labels` grant `weft:gateway = \"true\"` (a gateway carries its site's routes). " +
					"Unset: the site comes from the instance's network (the controller's inventory `sites`), else from the agent, and such a node is never a gateway. " +
					"This is how on-prem hosts are placed in their site. Changing it makes a new key.",
				Validators:    []validator.String{siteValidator()},
				PlanModifiers: replace,
			},
			"instance_selector": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "When set, the key enrolls only an agent that presents its cloud's signed instance document (`weft agent --cloud aws|azure|gcp`) of an instance in the controller's inventory, " +
					"running, enrolling from one of its addresses and matching every attribute given here. `{}` admits any inventory instance. " +
					"On-prem hosts have no signed document: give them a key without a selector, naming their `site`.",
				Attributes:    instanceSelectorAttributes(false),
				PlanModifiers: []planmodifier.Object{objectplanmodifier.RequiresReplace()},
			},
			"recreate_if_invalid": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Plan a new key when this one has expired or, being one-time, has been used. Default `false` (a revoked key is always replaced).",
			},
			"key": schema.StringAttribute{
				Computed: true, Sensitive: true,
				MarkdownDescription: "The secret key (`weft_<id>_<secret>`), known only from creation: null after an import.",
				PlanModifiers:       keep,
			},
			"ca_hash": schema.StringAttribute{
				Computed: true, MarkdownDescription: "Pin of the controller's CA, as the controller reported it when the key was created (null over plain HTTP and after an import).",
				PlanModifiers: keep,
			},
			"controller_urls": schema.ListAttribute{
				Computed: true, ElementType: types.StringType,
				MarkdownDescription: "The controller's https URLs its certificate covers, best first, as reported when the key was created.",
				PlanModifiers:       []planmodifier.List{listplanmodifier.UseStateForUnknown()},
			},
			"created_at": schema.StringAttribute{Computed: true, MarkdownDescription: "When the key was created (RFC 3339).", PlanModifiers: keep},
			"expires_at": schema.StringAttribute{Computed: true, MarkdownDescription: "When the key expires (RFC 3339).", PlanModifiers: keep},
			"state": schema.StringAttribute{
				Computed: true, MarkdownDescription: "`active`, `expired`, `revoked` or `used`, as of the last refresh.",
				PlanModifiers: keep,
			},
			"uses": schema.Int64Attribute{
				Computed: true, MarkdownDescription: "How many nodes have enrolled with the key, as of the last refresh.",
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
		},
	}
}

// ValidateConfig checks what spans attributes, as the controller does: a key granting
// weft:gateway must name its site.
func (r *joinKeyResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var labels types.Map
	var site types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("labels"), &labels)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("site"), &site)...)
	if resp.Diagnostics.HasError() || site.IsUnknown() || labels.IsUnknown() {
		return
	}
	gateway, ok := labels.Elements()[validate.GatewayLabel]
	if !ok || gateway.IsUnknown() {
		return
	}
	if msg := validate.JoinKeySite(stringMap(ctx, labels, &resp.Diagnostics), site.ValueString()); msg != "" {
		resp.Diagnostics.AddAttributeError(path.Root("site"), "Missing site", "site: "+msg+" (the controller refuses it).")
	}
}

func (r *joinKeyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *joinKeyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var plan joinKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	body := joinKeyRequest(ctx, plan, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	created, err := r.client.CreateJoinKey(ctx, body)
	if err != nil {
		resp.Diagnostics.AddError("Creating the join key failed", err.Error())
		return
	}
	plan.Key = types.StringValue(created.Key)
	plan.CAHash = types.StringNull()
	plan.ControllerURLs = types.ListNull(types.StringType)
	if created.Controller != nil {
		plan.CAHash = types.StringValue(created.Controller.CAHash)
		plan.ControllerURLs, _ = types.ListValueFrom(ctx, types.StringType, created.Controller.URLs)
	}
	joinKeyFromAPI(&plan, &created.JoinKeyInfo)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *joinKeyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var state joinKeyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	info, err := r.client.GetJoinKey(ctx, state.ID.ValueString())
	if weftapi.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Reading the join key failed", err.Error())
		return
	}
	if gone := joinKeyGone(info, state.RecreateIfInvalid.ValueBool()); gone != "" {
		resp.Diagnostics.AddWarning("Join key "+info.ID+" is "+info.State, gone)
		resp.State.RemoveResource(ctx)
		return
	}
	if state.RecreateIfInvalid.IsNull() {
		state.RecreateIfInvalid = types.BoolValue(false) // after an import
	}
	if state.ControllerURLs.IsNull() || state.ControllerURLs.IsUnknown() {
		state.ControllerURLs = types.ListNull(types.StringType)
	}
	joinKeyFromAPI(&state, info)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// joinKeyGone says why a key must be planned anew ("" when it stays): revoked outside Terraform,
// or expired or used with recreate_if_invalid.
func joinKeyGone(info *weftapi.JoinKeyInfo, recreateIfInvalid bool) string {
	switch {
	case info.State == "revoked":
		return "It was revoked outside Terraform; the next apply creates a new key."
	case recreateIfInvalid && (info.State == "expired" || info.State == "used"):
		return "recreate_if_invalid is set; the next apply creates a new key."
	}
	return ""
}

// Update changes only recreate_if_invalid (every other argument replaces the key).
func (r *joinKeyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan joinKeyModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *joinKeyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var state joinKeyModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if _, err := r.client.RevokeJoinKey(ctx, state.ID.ValueString()); err != nil && !weftapi.IsNotFound(err) {
		resp.Diagnostics.AddError("Revoking the join key failed", err.Error())
	}
}

func (r *joinKeyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// joinKeyRequest is the POST /v1/keys body for a plan.
func joinKeyRequest(ctx context.Context, m joinKeyModel, diags *diag.Diagnostics) weftapi.JoinKeyCreateRequest {
	labels := stringMap(ctx, m.Labels, diags)
	if labels == nil {
		labels = map[string]string{}
	}
	return weftapi.JoinKeyCreateRequest{
		Description:      strPtr(m.Description),
		Reusable:         m.Reusable.ValueBool(),
		TTLSeconds:       m.TTLSeconds.ValueInt64(),
		Labels:           labels,
		Site:             strPtr(m.Site),
		InstanceSelector: instanceSelectorOut(ctx, m.InstanceSelector, diags),
	}
}

// joinKeyFromAPI copies what the controller keeps about a key into m (never the secret).
func joinKeyFromAPI(m *joinKeyModel, k *weftapi.JoinKeyInfo) {
	m.ID = types.StringValue(k.ID)
	m.Description = strFrom(k.Description)
	m.Reusable = types.BoolValue(k.Reusable)
	m.TTLSeconds = types.Int64Value(ttlOf(k.CreatedAt, k.ExpiresAt, m.TTLSeconds))
	labels := k.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	m.Labels = mapValue(labels)
	m.Site = strFrom(k.Site)
	m.InstanceSelector = instanceSelectorIn(k.InstanceSelector)
	m.CreatedAt = types.StringValue(k.CreatedAt)
	m.ExpiresAt = types.StringValue(k.ExpiresAt)
	m.State = types.StringValue(k.State)
	m.Uses = types.Int64Value(k.Uses)
	if m.Key.IsUnknown() {
		m.Key = types.StringNull()
	}
	if m.CAHash.IsUnknown() {
		m.CAHash = types.StringNull()
	}
}

// ttlOf is the lifetime the key was created with: the controller sets expiresAt = createdAt + ttl.
func ttlOf(createdAt, expiresAt string, fallback types.Int64) int64 {
	c, err1 := time.Parse(time.RFC3339Nano, createdAt)
	e, err2 := time.Parse(time.RFC3339Nano, expiresAt)
	if err1 != nil || err2 != nil {
		return fallback.ValueInt64()
	}
	return int64(math.Round(e.Sub(c).Seconds()))
}
