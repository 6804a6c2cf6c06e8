package provider

import (
	"context"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/weftapi"
)

var _ datasource.DataSourceWithConfigure = (*servicesDataSource)(nil)

type servicesDataSource struct{ client *weftapi.Client }

func newServicesDataSource() datasource.DataSource { return &servicesDataSource{} }

type servicesDataModel struct {
	Namespace types.String         `tfsdk:"namespace"`
	Services  []serviceSummaryData `tfsdk:"services"`
}

type serviceSummaryData struct {
	ID          types.String       `tfsdk:"id"`
	Namespace   types.String       `tfsdk:"namespace"`
	Name        types.String       `tfsdk:"name"`
	Description types.String       `tfsdk:"description"`
	VIP         types.String       `tfsdk:"vip"`
	DNSName     types.String       `tfsdk:"dns_name"`
	Algorithm   types.String       `tfsdk:"algorithm"`
	Locality    types.String       `tfsdk:"locality"`
	Ports       []servicePortModel `tfsdk:"ports"`
}

func (d *servicesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_services"
}

func (d *servicesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	s := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The federated services, optionally only those of one namespace, sorted by namespace and name: each with its VIP, DNS name and ports.",
		Attributes: map[string]schema.Attribute{
			"namespace": schema.StringAttribute{Optional: true, MarkdownDescription: "Only services of this namespace.", Validators: []validator.String{nameValidator()}},
			"services": schema.ListNestedAttribute{Computed: true, MarkdownDescription: "The services.", NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
				"id": s("`<namespace>/<name>`."), "namespace": s("The service's namespace."), "name": s("The service's name."),
				"description": s("What the service is for."), "vip": s("Its virtual IP."), "dns_name": s("`<name>.<namespace>.svc.<zone>`."),
				"algorithm": s("How connections are balanced."), "locality": s("The nearest tier clients prefer."),
				"ports": schema.ListNestedAttribute{Computed: true, MarkdownDescription: "The ports on the VIP.", NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name": s("The port's label."), "port": schema.Int64Attribute{Computed: true, MarkdownDescription: "The port on the VIP."},
					"protocol":    s("`tcp` or `udp`."),
					"target_port": schema.Int64Attribute{Computed: true, MarkdownDescription: "The port the backends listen on (null: `port`)."},
				}}},
			}}},
		},
	}
}

func (d *servicesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *servicesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if !ready(d.client, &resp.Diagnostics) {
		return
	}
	var m servicesDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	all, err := d.client.ListServices(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Listing the services failed", err.Error())
		return
	}
	slices.SortFunc(all, func(a, b weftapi.ServiceView) int {
		return strings.Compare(a.Service.Namespace+"/"+a.Service.Name, b.Service.Namespace+"/"+b.Service.Name)
	})
	m.Services = []serviceSummaryData{}
	for i := range all {
		v := &all[i]
		if !m.Namespace.IsNull() && v.Service.Namespace != m.Namespace.ValueString() {
			continue
		}
		full := serviceIn(&v.Service, v.VIP, v.DNSName)
		m.Services = append(m.Services, serviceSummaryData{full.ID, full.Namespace, full.Name, full.Description, full.VIP, full.DNSName, full.Algorithm, full.Locality, full.Ports})
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
