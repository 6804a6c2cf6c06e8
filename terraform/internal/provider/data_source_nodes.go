package provider

import (
	"context"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/weftapi"
)

var _ datasource.DataSourceWithConfigure = (*nodesDataSource)(nil)

type nodesDataSource struct{ client *weftapi.Client }

func newNodesDataSource() datasource.DataSource { return &nodesDataSource{} }

type nodesDataModel struct {
	Site   types.String `tfsdk:"site"`
	Labels types.Map    `tfsdk:"labels"`
	Nodes  types.List   `tfsdk:"nodes"`
	Names  types.List   `tfsdk:"names"`
}

func (d *nodesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_nodes"
}

func (d *nodesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The enrolled nodes, optionally only those of one site and carrying some labels, sorted by name.",
		Attributes: map[string]schema.Attribute{
			"site": schema.StringAttribute{
				Optional: true, MarkdownDescription: "Only nodes of this site.",
				Validators: []validator.String{nameValidator()},
			},
			"labels": schema.MapAttribute{
				Optional: true, ElementType: types.StringType,
				MarkdownDescription: "Only nodes carrying every one of these labels with exactly this value (e.g. `{ \"cloud.provider\" = \"aws\" }`).",
			},
			"nodes": schema.ListNestedAttribute{
				Computed: true, MarkdownDescription: "The matching nodes.",
				NestedObject: schema.NestedAttributeObject{Attributes: nodeDataAttributes()},
			},
			"names": schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "The matching nodes' names."},
		},
	}
}

func (d *nodesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *nodesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if !ready(d.client, &resp.Diagnostics) {
		return
	}
	var m nodesDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	all, err := d.client.ListNodes(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Listing nodes failed", err.Error())
		return
	}
	labels := stringMap(ctx, m.Labels, &resp.Diagnostics)
	nodes, names := []attr.Value{}, []attr.Value{}
	for _, n := range sortNodes(all) {
		if nodeMatches(&n, m.Site.ValueString(), labels) {
			nodes = append(nodes, nodeFactsOf(&n).object())
			names = append(names, types.StringValue(n.Name))
		}
	}
	m.Nodes = types.ListValueMust(types.ObjectType{AttrTypes: nodeAttrTypes}, nodes)
	m.Names = types.ListValueMust(types.StringType, names)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func sortNodes(nodes []weftapi.Node) []weftapi.Node {
	out := slices.Clone(nodes)
	slices.SortFunc(out, func(a, b weftapi.Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}
