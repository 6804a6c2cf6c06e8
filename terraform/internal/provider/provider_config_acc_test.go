package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/weft/weft/terraform/internal/acctest"
)

const identitiesRead = `
data "weft_identities" "all" {}
`

func TestAccProvider_configuration(t *testing.T) {
	ctl := acctest.Shared(t)
	ctl.Enroll(t, "tf-cfg-1", "tf-cfg", map[string]string{"weft:namespace": "tfcfg"})
	otherPin := "sha256:" + strings.Repeat("0", 64)
	block := func(attrs string) string {
		return acctest.RequiredProviders + "provider \"weft\" {\n" + attrs + "\n}\n" + identitiesRead
	}
	cases := []struct {
		name   string
		config string
		env    map[string]string
		want   string // "" = the read succeeds
	}{
		{name: "https with the pin", config: ctl.ProviderConfig() + identitiesRead},
		{name: "everything from the environment", config: block(""),
			env: map[string]string{"WEFT_ENDPOINT": ctl.URL, "WEFT_CA_HASH": ctl.CAHash, "WEFT_ADMIN_TOKEN": ctl.Token}},
		{name: "the local unix socket", config: block(fmt.Sprintf("endpoint = %q\ntoken = %q", "unix://"+ctl.Socket, ctl.Token))},
		{name: "another CA's pin: nothing sent", config: block(fmt.Sprintf("endpoint = %q\nca_hash = %q\ntoken = %q", ctl.URL, otherPin, ctl.Token)),
			want: "controller certificate does not match ca_hash (got " + ctl.CAHash + ")"},
		{name: "no pin: the system's CAs do not know the controller's", config: block(fmt.Sprintf("endpoint = %q\ntoken = %q", ctl.URL, ctl.Token)),
			want: "certificate signed by unknown authority"},
		{name: "a wrong token", config: block(fmt.Sprintf("endpoint = %q\nca_hash = %q\ntoken = %q", ctl.URL, ctl.CAHash, "not-the-token")),
			want: "401 unauthorized: admin token is not valid"},
		{name: "no endpoint", config: block(fmt.Sprintf("token = %q", ctl.Token)), env: map[string]string{"WEFT_ENDPOINT": ""},
			want: "Set endpoint in the provider block or $WEFT_ENDPOINT"}, // at the first read
		{name: "a malformed pin", config: block(fmt.Sprintf("endpoint = %q\nca_hash = \"sha256:abc\"\ntoken = %q", ctl.URL, ctl.Token)),
			want: "must be sha256: followed by 64 hex digits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			step := resource.TestStep{Config: tc.config}
			if tc.want == "" {
				step.Check = resource.TestCheckTypeSetElemNestedAttrs("data.weft_identities.all", "identities.*",
					map[string]string{"spiffe_id": "spiffe://weft.internal/ns/tfcfg/sa/default"})
			} else {
				step.ExpectError = wrapped(regexpQuote(tc.want))
			}
			resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: providers, Steps: []resource.TestStep{step}})
		})
	}
	_ = ctl.Client().DeleteNode(ctx(), "tf-cfg-1")
}
