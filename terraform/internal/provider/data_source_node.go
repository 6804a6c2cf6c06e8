package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/weftapi"
)

var (
	_ datasource.DataSourceWithConfigure        = (*nodeDataSource)(nil)
	_ datasource.DataSourceWithConfigValidators = (*nodeDataSource)(nil)
)

type nodeDataSource struct{ client *weftapi.Client }

func newNodeDataSource() datasource.DataSource { return &nodeDataSource{} }

type nodeDataModel struct {
	ID                 types.String `tfsdk:"id"`
	Name               types.String `tfsdk:"name"`
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
	Status             types.String `tfsdk:"status"`
	LastSeen           types.String `tfsdk:"last_seen"`
}

func (d *nodeDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_node"
}

func (d *nodeDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := nodeDataAttributes()
	attrs["id"] = schema.StringAttribute{Optional: true, Computed: true, MarkdownDescription: "The node's id. Give `id` or `name`."}
	attrs["name"] = schema.StringAttribute{
		Optional: true, Computed: true, MarkdownDescription: "The node's name. Give `id` or `name`.",
		Validators: []validator.String{nameValidator()},
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "One enrolled node, by id or name, with its liveness.",
		Attributes:          attrs,
	}
}

func (d *nodeDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{datasourcevalidator.ExactlyOneOf(path.MatchRoot("id"), path.MatchRoot("name"))}
}

func (d *nodeDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *nodeDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if !ready(d.client, &resp.Diagnostics) {
		return
	}
	var m nodeDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	key := m.ID.ValueString()
	if key == "" {
		key = m.Name.ValueString()
	}
	n, err := d.client.GetNode(ctx, key)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Reading node %q failed", key), err.Error())
		return
	}
	if !m.Name.IsNull() && n.Name != m.Name.ValueString() {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Not a node name", fmt.Sprintf("%q is the id of node %q; look it up by id instead.", m.Name.ValueString(), n.Name))
		return
	}
	f := nodeFactsOf(n)
	m = nodeDataModel{f.ID, f.Name, f.Site, f.SiteSource, f.OverlayAddress, f.WireguardPublicKey, f.Labels, f.Identity, f.IdentityNumber,
		f.WorkloadPrefix, f.JoinKeyID, f.EnrollmentPolicy, f.Instance, f.EnrolledAt, f.Status, f.LastSeen}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
