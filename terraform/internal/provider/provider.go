// Package provider is the Weft Terraform provider: join keys, enrollment policies, policies and
// nodes as resources, and nodes, identities and the cloud inventory as data sources, over the
// controller's REST API (internal/weftapi). Plan-time checks mirror the controller's
// (internal/validate), so a bad value fails at `terraform plan`, naming the attribute.
package provider

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/weftapi"
)

// Environment variables read when the provider block leaves an attribute out.
const (
	EnvEndpoint = "WEFT_ENDPOINT"
	EnvCAHash   = "WEFT_CA_HASH"
	EnvToken    = "WEFT_ADMIN_TOKEN"
)

// Address is the provider's source address.
const Address = "registry.terraform.io/weft/weft"

var _ provider.Provider = (*weftProvider)(nil)

type weftProvider struct{ version string }

// New returns the provider factory for `version`.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &weftProvider{version: version} }
}

type providerModel struct {
	Endpoint types.String `tfsdk:"endpoint"`
	CAHash   types.String `tfsdk:"ca_hash"`
	Token    types.String `tfsdk:"token"`
}

func (p *weftProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "weft"
	resp.Version = p.version
}

func (p *weftProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages a Weft overlay through its controller's REST API: " +
			"join keys, enrollment policies, policies and nodes. The controller serves HTTPS with a certificate from its own CA; " +
			"the provider trusts that CA by its pin (`ca_hash`), exactly as `weft agent --ca-hash` and the admin commands do.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The controller's API: `https://host:port` (the usual), `http://host:port` for a controller started with `--no-api-tls`, " +
					"or `unix:///var/lib/weft/controller/api.sock` for its local socket (plain HTTP, root only). Default: `$" + EnvEndpoint + "`.",
			},
			"ca_hash": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Pin of the controller's CA: `sha256:` and 64 hex digits, in the controller's `<state-dir>/tls/ca.hash`, its `controller ready` log line " +
					"and every `weft keys create`. The controller must present a chain holding the certificate with this hash, its certificate must chain to it and name the endpoint's host; " +
					"otherwise nothing is sent (no token). Without it an https endpoint is checked against the system's CAs. Default: `$" + EnvCAHash + "`.",
			},
			"token": schema.StringAttribute{
				Optional:            true,
				Sensitive:           true,
				MarkdownDescription: "The controller's admin token (`<state-dir>/admin-token`). Default: `$" + EnvToken + "`, the variable the `weft` admin commands read.",
			},
		},
	}
}

func (p *weftProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	for _, a := range []struct {
		name string
		v    types.String
	}{{"endpoint", cfg.Endpoint}, {"ca_hash", cfg.CAHash}, {"token", cfg.Token}} {
		if a.v.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root(a.name), "Unknown "+a.name,
				"The provider cannot reach the controller before "+a.name+" is known; set it from a value known at plan time, or -target the resources it comes from first.")
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	opts := weftapi.Options{
		Endpoint:  orEnv(cfg.Endpoint, EnvEndpoint),
		CAHash:    orEnv(cfg.CAHash, EnvCAHash),
		Token:     orEnv(cfg.Token, EnvToken),
		UserAgent: "terraform-provider-weft/" + p.version,
	}
	if opts.Endpoint == "" {
		// Not an error yet: a configuration may hold the provider without using it (the
		// agent-cloud-init module joining keyless). Each resource and data source refuses to
		// work without a client (ready).
		return
	}
	client, err := weftapi.New(opts)
	if err != nil {
		resp.Diagnostics.AddError("Invalid provider configuration", err.Error())
		return
	}
	resp.ResourceData = client
	resp.DataSourceData = client
}

func orEnv(v types.String, env string) string {
	if !v.IsNull() {
		return v.ValueString()
	}
	return os.Getenv(env)
}

func (p *weftProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newJoinKeyResource,
		newEnrollmentPolicyResource,
		newPolicyResource,
		newServiceResource,
		newNodeResource,
	}
}

func (p *weftProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newNodesDataSource,
		newServicesDataSource,
		newNodeDataSource,
		newIdentitiesDataSource,
		newInventoryInstancesDataSource,
	}
}

// ready reports whether the provider has a client, and says what to do when it has not.
func ready(c *weftapi.Client, diags interface{ AddError(string, string) }) bool {
	if c == nil {
		diags.AddError("No controller endpoint", fmt.Sprintf("Set endpoint in the provider block or $%s, e.g. https://ctl.example:8080, and token (or $%s).", EnvEndpoint, EnvToken))
		return false
	}
	return true
}

// clientFrom takes the configured client out of ProviderData; nil when the provider is not
// configured yet (Terraform calls Configure on resources before that too).
func clientFrom(data any, diags interface{ AddError(string, string) }) *weftapi.Client {
	if data == nil {
		return nil
	}
	c, ok := data.(*weftapi.Client)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("want *weftapi.Client, got %T; this is a bug in the provider", data))
		return nil
	}
	return c
}
