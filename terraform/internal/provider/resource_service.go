package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

var (
	_ resource.ResourceWithConfigure      = (*serviceResource)(nil)
	_ resource.ResourceWithImportState    = (*serviceResource)(nil)
	_ resource.ResourceWithValidateConfig = (*serviceResource)(nil)
)

type serviceResource struct{ client *weftapi.Client }

func newServiceResource() resource.Resource { return &serviceResource{} }

func (r *serviceResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service"
}

func portAttr(desc string, required bool) schema.Int64Attribute {
	return schema.Int64Attribute{Required: required, Optional: !required, MarkdownDescription: desc,
		Validators: []validator.Int64{int64validator.Between(validate.PortMin, validate.PortMax)}}
}

func backendAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"identity": schema.StringAttribute{Optional: true, MarkdownDescription: "Workloads and nodes with this SPIFFE ID.",
			Validators: []validator.String{stringCheck{"a SPIFFE ID", validate.SpiffeID}}},
		"namespace": schema.StringAttribute{Optional: true, MarkdownDescription: "Workloads and nodes whose identity is in this namespace.",
			Validators: []validator.String{nameValidator()}},
		"service_account": schema.StringAttribute{Optional: true, MarkdownDescription: "With `namespace`: only this service account.",
			Validators: []validator.String{stringCheck{"a service account name", validate.ServiceAccount}}},
		"labels": schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Nodes carrying every one of these labels."},
		"sites": schema.ListAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Only backends in these sites (1-64).",
			Validators: []validator.List{listvalidator.SizeBetween(1, 64), listvalidator.ValueStringsAre(siteValidator())}},
		"nodes": schema.ListAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Only backends on these nodes, by name (1-256).",
			Validators: []validator.List{listvalidator.SizeBetween(1, 256), listvalidator.ValueStringsAre(nameValidator())}},
	}
}

func backendsAttr(desc string, required bool) schema.ListNestedAttribute {
	return schema.ListNestedAttribute{Required: required, Optional: !required, MarkdownDescription: desc,
		NestedObject: schema.NestedAttributeObject{Attributes: backendAttributes()},
		Validators:   []validator.List{listvalidator.SizeBetween(1, 32)}}
}

func (r *serviceResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A federated service: a name (`<name>.<namespace>.svc.<zone>`), a virtual IP and ports, served by workloads and nodes chosen by identity, " +
			"namespace/service account or labels, in any site. Agents balance connections at connect time (round robin, least connections, weighted subsets, EWMA latency), " +
			"nearest locality first, among the backends the caller's identity may reach under policy. " +
			"Changes are applied in place (`PUT /v1/services/<namespace>/<name>`); a change made with `weft service apply` shows on the next plan.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "`<namespace>/<name>`.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"namespace": schema.StringAttribute{Required: true, MarkdownDescription: "The service's namespace (a DNS label). Changing it makes a new service.",
				Validators: []validator.String{nameValidator()}, PlanModifiers: replace},
			"name": schema.StringAttribute{Required: true, MarkdownDescription: "The service's name (a DNS label). Changing it makes a new service.",
				Validators: []validator.String{nameValidator()}, PlanModifiers: replace},
			"description": schema.StringAttribute{Optional: true, MarkdownDescription: "What the service is for (at most 200 characters).",
				Validators: []validator.String{stringvalidator.LengthAtMost(validate.DescriptionMaxLength)}},
			"ports": schema.ListNestedAttribute{Required: true, MarkdownDescription: "The ports clients connect to on the VIP (1-16, each protocol/port once).",
				Validators: []validator.List{listvalidator.SizeBetween(1, 16)},
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{Optional: true, MarkdownDescription: "A label for the port (`http`).", Validators: []validator.String{nameValidator()}},
					"port": portAttr("The port on the VIP.", true),
					"protocol": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("tcp"),
						MarkdownDescription: "`tcp` (default) or `udp`.", Validators: []validator.String{stringvalidator.OneOf("tcp", "udp")}},
					"target_port": portAttr("The port the backends listen on; default `port`.", false),
				}}},
			"algorithm": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("round-robin"),
				MarkdownDescription: "`round-robin` (default), `least-connections`, `weighted` (with `subsets`) or `ewma-latency`.",
				Validators:          []validator.String{stringvalidator.OneOf(validate.ServiceAlgorithms...)}},
			"backends": backendsAttr("The backends, all alike (1-32 selectors; every algorithm but `weighted`). Each names exactly one of `identity`, `namespace` (with an optional `service_account`) or `labels`, "+
				"optionally only in `sites` or on `nodes`. Exactly one of `backends` and `subsets`.", false),
			"subsets": schema.ListNestedAttribute{Optional: true, MarkdownDescription: "Weighted groups of backends (algorithm `weighted`, 1-16), e.g. `stable` 90 and `canary` 10.",
				Validators: []validator.List{listvalidator.SizeBetween(1, 16)},
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{Required: true, MarkdownDescription: "The subset's name (a DNS label, unique in the service).", Validators: []validator.String{nameValidator()}},
					"weight": schema.Int64Attribute{Required: true, MarkdownDescription: "Relative weight, 0-10000; its backends share it equally.",
						Validators: []validator.Int64{int64validator.Between(0, 10000)}},
					"backends": backendsAttr("The subset's backends (1-32 selectors, as the service's `backends`).", true),
				}}},
			"locality": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("site"),
				MarkdownDescription: "The nearest tier a client prefers: `site` (default: same site, then same cloud, then any), `cloud` or `any`; a tier with no healthy backend fails over to the next.",
				Validators:          []validator.String{stringvalidator.OneOf(validate.ServiceLocalities...)}},
			"health_check": schema.SingleNestedAttribute{Optional: true, MarkdownDescription: "How the agents hosting backends check them.",
				Attributes: map[string]schema.Attribute{
					"protocol": schema.StringAttribute{Required: true, MarkdownDescription: "`tcp` (connect) or `http` (GET, healthy on 2xx/3xx).", Validators: []validator.String{stringvalidator.OneOf(validate.ServiceHealthKinds...)}},
					"port":     portAttr("The port checked; default the first port's `target_port`.", false),
					"path": schema.StringAttribute{Optional: true, MarkdownDescription: "`http` only: the path asked for (default `/`).",
						Validators: []validator.String{stringvalidator.LengthAtMost(256), stringCheck{"an absolute path of printable characters", httpPath}}},
					"interval_ms": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(1000), MarkdownDescription: "Between checks, 100-60000 ms (default 1000).",
						Validators: []validator.Int64{int64validator.Between(100, 60000)}},
					"timeout_ms": schema.Int64Attribute{Optional: true, MarkdownDescription: "Each check's limit, 50-60000 ms and at most `interval_ms`; default the interval (at most 1 s).",
						Validators: []validator.Int64{int64validator.Between(50, 60000)}},
					"healthy_threshold": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(2), MarkdownDescription: "Successes that make a backend healthy again, 1-10 (default 2).",
						Validators: []validator.Int64{int64validator.Between(1, 10)}},
					"unhealthy_threshold": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(2), MarkdownDescription: "Failures that make a backend unhealthy, 1-10 (default 2).",
						Validators: []validator.Int64{int64validator.Between(1, 10)}},
				}},
			"rate_limit": schema.SingleNestedAttribute{Optional: true, MarkdownDescription: "New connections per second each source identity may open, per client node (a token bucket).",
				Attributes: map[string]schema.Attribute{
					"connections_per_second": schema.Int64Attribute{Required: true, MarkdownDescription: "1-1000000.", Validators: []validator.Int64{int64validator.Between(1, 1000000)}},
					"burst": schema.Int64Attribute{Optional: true, MarkdownDescription: "Connections allowed at once after a quiet period, 1-1000000; default `connections_per_second`.",
						Validators: []validator.Int64{int64validator.Between(1, 1000000)}},
				}},
			"vip": schema.StringAttribute{Optional: true, Computed: true, MarkdownDescription: "The virtual IP: one asked for (inside the controller's service range, not taken), else the lowest free one, kept across updates.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"dns_name": schema.StringAttribute{Computed: true, MarkdownDescription: "The name agents answer for the service: `<name>.<namespace>.svc.<zone>`.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
		},
	}
}

func httpPath(s string) string {
	if !strings.HasPrefix(s, "/") {
		return "must be an absolute path of printable characters without spaces"
	}
	for _, c := range s {
		if c < 0x21 || c > 0x7e {
			return "must be an absolute path of printable characters without spaces"
		}
	}
	return ""
}

// ValidateConfig runs the controller's checks that span attributes, once the configuration is known.
func (r *serviceResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m serviceModel
	if d := req.Config.Get(ctx, &m); d.HasError() {
		return // unknown values: checked again at apply
	}
	if m.Algorithm.IsNull() {
		m.Algorithm = types.StringValue("round-robin")
	}
	if m.HealthCheck != nil && m.HealthCheck.IntervalMs.IsNull() {
		m.HealthCheck.IntervalMs = types.Int64Value(1000)
	}
	for i := range m.Ports {
		if m.Ports[i].Protocol.IsNull() {
			m.Ports[i].Protocol = types.StringValue("tcp")
		}
	}
	addProblems(&resp.Diagnostics, path.Empty(), "", serviceProblems(serviceOut(m)))
}

func (r *serviceResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *serviceResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.put(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics)
}

func (r *serviceResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.put(ctx, req.Plan.Get, &resp.State, &resp.Diagnostics)
}

func (r *serviceResource) put(ctx context.Context, get func(context.Context, any) diag.Diagnostics, state stateSetter, diags *diag.Diagnostics) {
	if !ready(r.client, diags) {
		return
	}
	var plan serviceModel
	diags.Append(get(ctx, &plan)...)
	if diags.HasError() {
		return
	}
	if _, err := r.client.PutService(ctx, serviceOut(plan)); err != nil {
		diags.AddError("Applying the service failed", err.Error())
		return
	}
	// The view has the DNS name the record lacks.
	view, err := r.client.GetService(ctx, plan.Namespace.ValueString(), plan.Name.ValueString())
	if err != nil {
		diags.AddError("Reading the applied service failed", err.Error())
		return
	}
	m := serviceIn(&view.Service, view.VIP, view.DNSName)
	diags.Append(state.Set(ctx, &m)...)
}

func (r *serviceResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var id types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("id"), &id)...)
	if resp.Diagnostics.HasError() {
		return
	}
	namespace, name, _ := strings.Cut(id.ValueString(), "/")
	view, err := r.client.GetService(ctx, namespace, name)
	if weftapi.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Reading the service failed", err.Error())
		return
	}
	m := serviceIn(&view.Service, view.VIP, view.DNSName)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *serviceResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	if !ready(r.client, &resp.Diagnostics) {
		return
	}
	var id types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("id"), &id)...)
	namespace, name, _ := strings.Cut(id.ValueString(), "/")
	if err := r.client.DeleteService(ctx, namespace, name); err != nil && !weftapi.IsNotFound(err) {
		resp.Diagnostics.AddError("Deleting the service failed", err.Error())
	}
}

func (r *serviceResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	namespace, name, ok := strings.Cut(req.ID, "/")
	if !ok || validate.Name(namespace) != "" || validate.Name(name) != "" {
		resp.Diagnostics.AddError("Bad import id", fmt.Sprintf("want <namespace>/<name> (two DNS labels), got %q", req.ID))
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
