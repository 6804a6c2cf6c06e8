package provider

import (
	"context"
	"regexp"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

var _ datasource.DataSourceWithConfigure = (*identitiesDataSource)(nil)

type identitiesDataSource struct{ client *weftapi.Client }

func newIdentitiesDataSource() datasource.DataSource { return &identitiesDataSource{} }

type identitiesDataModel struct {
	Namespace  types.String `tfsdk:"namespace"`
	Identities types.List   `tfsdk:"identities"`
}

var identityAttrTypes = map[string]attr.Type{
	"spiffe_id": types.StringType, "number": types.Int64Type,
	"trust_domain": types.StringType, "namespace": types.StringType, "service_account": types.StringType,
}

var spiffeParts = regexp.MustCompile(validate.SpiffeIDPattern)

func (d *identitiesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_identities"
}

func (d *identitiesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The identities the controller has allocated (of nodes and workloads): each SPIFFE ID and the number the datapath uses for it, sorted by number.",
		Attributes: map[string]schema.Attribute{
			"namespace": schema.StringAttribute{
				Optional: true, MarkdownDescription: "Only identities of this SPIFFE namespace.",
				Validators: []validator.String{nameValidator()},
			},
			"identities": schema.ListNestedAttribute{
				Computed: true, MarkdownDescription: "The identities.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"spiffe_id":       schema.StringAttribute{Computed: true, MarkdownDescription: "`spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`."},
					"number":          schema.Int64Attribute{Computed: true, MarkdownDescription: "The datapath's number for it (256 and up; 0-255 are reserved)."},
					"trust_domain":    schema.StringAttribute{Computed: true, MarkdownDescription: "The SPIFFE ID's trust domain."},
					"namespace":       schema.StringAttribute{Computed: true, MarkdownDescription: "The SPIFFE ID's namespace."},
					"service_account": schema.StringAttribute{Computed: true, MarkdownDescription: "The SPIFFE ID's service account."},
				}},
			},
		},
	}
}

func (d *identitiesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *identitiesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if !ready(d.client, &resp.Diagnostics) {
		return
	}
	var m identitiesDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	all, err := d.client.ListIdentities(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Listing identities failed", err.Error())
		return
	}
	slices.SortFunc(all, func(a, b weftapi.Identity) int { return int(a.ID - b.ID) })
	out := []attr.Value{}
	for _, id := range all {
		parts := spiffeParts.FindStringSubmatch(id.SpiffeID)
		if parts == nil {
			continue // the controller only stores well-formed ids
		}
		if ns := m.Namespace.ValueString(); ns != "" && parts[3] != ns {
			continue
		}
		out = append(out, types.ObjectValueMust(identityAttrTypes, map[string]attr.Value{
			"spiffe_id": types.StringValue(id.SpiffeID), "number": types.Int64Value(id.ID),
			"trust_domain": types.StringValue(parts[1]), "namespace": types.StringValue(parts[3]), "service_account": types.StringValue(parts[5]),
		}))
	}
	m.Identities = types.ListValueMust(types.ObjectType{AttrTypes: identityAttrTypes}, out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
