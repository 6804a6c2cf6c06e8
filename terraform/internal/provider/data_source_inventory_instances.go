package provider

import (
	"context"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

var _ datasource.DataSourceWithConfigure = (*inventoryInstancesDataSource)(nil)

type inventoryInstancesDataSource struct{ client *weftapi.Client }

func newInventoryInstancesDataSource() datasource.DataSource { return &inventoryInstancesDataSource{} }

type inventoryInstancesModel struct {
	Cloud     types.String `tfsdk:"cloud"`
	Account   types.String `tfsdk:"account"`
	Region    types.String `tfsdk:"region"`
	Network   types.String `tfsdk:"network"`
	State     types.String `tfsdk:"state"`
	Tags      types.Map    `tfsdk:"tags"`
	Instances types.List   `tfsdk:"instances"`
}

var instanceStates = []string{"pending", "running", "stopping", "stopped", "terminated", "unknown"}

var inventoryInstanceAttrTypes = map[string]attr.Type{
	"provider": types.StringType, "account": types.StringType, "region": types.StringType, "zone": types.StringType,
	"network": types.StringType, "subnet": types.StringType, "id": types.StringType, "name": types.StringType,
	"private_ips": types.ListType{ElemType: types.StringType}, "public_ips": types.ListType{ElemType: types.StringType},
	"tags": types.MapType{ElemType: types.StringType}, "state": types.StringType, "seen_at": types.StringType,
	"absent_since": types.StringType, "bound_node": types.StringType,
}

func (d *inventoryInstancesDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_inventory_instances"
}

func (d *inventoryInstancesDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	s := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The cloud instances in the controller's inventory (every configured AWS, Azure, GCP and on-prem account, as of the last sync), " +
			"optionally filtered like an instance selector, sorted by provider, account and id.",
		Attributes: map[string]schema.Attribute{
			"cloud":   schema.StringAttribute{Optional: true, MarkdownDescription: "Only instances of this cloud (an instance's `provider`): `aws`, `azure`, `gcp` or `onprem`.", Validators: []validator.String{stringvalidator.OneOf(validate.Providers...)}},
			"account": schema.StringAttribute{Optional: true, MarkdownDescription: "Only instances of this AWS account, Azure subscription, GCP project or on-prem site."},
			"region":  schema.StringAttribute{Optional: true, MarkdownDescription: "Only instances of this region."},
			"network": schema.StringAttribute{Optional: true, MarkdownDescription: "Only instances of this network (VPC id, VNet id, GCE network, on-prem network)."},
			"state":   schema.StringAttribute{Optional: true, MarkdownDescription: "Only instances in this state: " + strings.Join(instanceStates, ", ") + ".", Validators: []validator.String{stringvalidator.OneOf(instanceStates...)}},
			"tags":    schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Only instances carrying every one of these tags with exactly this value."},
			"instances": schema.ListNestedAttribute{
				Computed: true, MarkdownDescription: "The matching instances.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"provider": s("`aws`, `azure`, `gcp` or `onprem`."), "account": s("AWS account, Azure subscription, GCP project or on-prem site."),
					"region": s("Region (Azure: location; on-prem: the site)."), "zone": s("Availability zone, when the cloud has one."),
					"network": s("VPC id, VNet id, GCE network or on-prem network."), "subnet": s("Subnet, when known."),
					"id": s("The cloud's instance id."), "name": s("The instance's name."),
					"private_ips":  schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Private addresses."},
					"public_ips":   schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Public addresses."},
					"tags":         schema.MapAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Tags (GCP: labels)."},
					"state":        s("pending, running, stopping, stopped, terminated or unknown."),
					"seen_at":      s("The last sync that listed it."),
					"absent_since": s("Set when a complete sync no longer listed it."),
					"bound_node":   s("The id of the node enrolled on this instance."),
				}},
			},
		},
	}
}

func (d *inventoryInstancesDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *inventoryInstancesDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	if !ready(d.client, &resp.Diagnostics) {
		return
	}
	var m inventoryInstancesModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	inv, err := d.client.Inventory(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Reading the inventory failed", err.Error())
		return
	}
	filter := instanceFilter{
		provider: m.Cloud.ValueString(), account: m.Account.ValueString(), region: m.Region.ValueString(),
		network: m.Network.ValueString(), state: m.State.ValueString(), tags: stringMap(ctx, m.Tags, &resp.Diagnostics),
	}
	instances := slices.Clone(inv.Instances)
	slices.SortFunc(instances, func(a, b weftapi.InventoryInstance) int {
		return strings.Compare(a.Provider+"\x00"+a.Account+"\x00"+a.ID, b.Provider+"\x00"+b.Account+"\x00"+b.ID)
	})
	out := []attr.Value{}
	for _, i := range instances {
		if filter.matches(&i) {
			out = append(out, inventoryInstanceObject(&i))
		}
	}
	m.Instances = types.ListValueMust(types.ObjectType{AttrTypes: inventoryInstanceAttrTypes}, out)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

type instanceFilter struct {
	provider, account, region, network, state string
	tags                                      map[string]string
}

func (f instanceFilter) matches(i *weftapi.InventoryInstance) bool {
	for _, c := range [][2]string{{f.provider, i.Provider}, {f.account, i.Account}, {f.region, i.Region}, {f.network, i.Network}, {f.state, i.State}} {
		if c[0] != "" && c[0] != c[1] {
			return false
		}
	}
	for k, v := range f.tags {
		if got, ok := i.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func stringList(items []string) types.List {
	vals := make([]attr.Value, 0, len(items))
	for _, s := range items {
		vals = append(vals, types.StringValue(s))
	}
	return types.ListValueMust(types.StringType, vals)
}

func inventoryInstanceObject(i *weftapi.InventoryInstance) types.Object {
	return types.ObjectValueMust(inventoryInstanceAttrTypes, map[string]attr.Value{
		"provider": types.StringValue(i.Provider), "account": types.StringValue(i.Account), "region": types.StringValue(i.Region),
		"zone": strFrom(i.Zone), "network": types.StringValue(i.Network), "subnet": strFrom(i.Subnet),
		"id": types.StringValue(i.ID), "name": types.StringValue(i.Name),
		"private_ips": stringList(i.PrivateIPs), "public_ips": stringList(i.PublicIPs),
		"tags": mapValue(nonNil(i.Tags)), "state": types.StringValue(i.State), "seen_at": types.StringValue(i.SeenAt),
		"absent_since": strFrom(i.AbsentSince), "bound_node": strFrom(i.BoundNode),
	})
}
