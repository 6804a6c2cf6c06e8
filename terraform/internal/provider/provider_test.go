package provider

import (
	"context"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

func providerSchema(t *testing.T) *tfprotov6.GetProviderSchemaResponse {
	t.Helper()
	server := providerserver.NewProtocol6(New("test")())()
	resp, err := server.GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.Diagnostics {
		t.Errorf("provider schema: %s: %s", d.Summary, d.Detail)
	}
	return resp
}

func TestSchema_servesEveryResourceAndDataSource(t *testing.T) {
	resp := providerSchema(t)
	var resources, dataSources []string
	for name := range resp.ResourceSchemas {
		resources = append(resources, name)
	}
	for name := range resp.DataSourceSchemas {
		dataSources = append(dataSources, name)
	}
	slices.Sort(resources)
	slices.Sort(dataSources)
	if want := []string{"weft_enrollment_policy", "weft_join_key", "weft_node", "weft_policy", "weft_service"}; !slices.Equal(resources, want) {
		t.Errorf("resources: got %v, want %v", resources, want)
	}
	if want := []string{"weft_identities", "weft_inventory_instances", "weft_node", "weft_nodes", "weft_services"}; !slices.Equal(dataSources, want) {
		t.Errorf("data sources: got %v, want %v", dataSources, want)
	}
}

// Every attribute and block says what it is for: the docs are generated from these descriptions.
func TestSchema_everyAttributeIsDescribed(t *testing.T) {
	resp := providerSchema(t)
	check := func(kind, name string, s *tfprotov6.Schema) {
		if s.Block.Description == "" {
			t.Errorf("%s %s: no description", kind, name)
		}
		walkBlock(t, kind+" "+name, s.Block)
	}
	check("provider", "weft", resp.Provider)
	for name, s := range resp.ResourceSchemas {
		check("resource", name, s)
	}
	for name, s := range resp.DataSourceSchemas {
		check("data source", name, s)
	}
}

func walkBlock(t *testing.T, where string, b *tfprotov6.SchemaBlock) {
	for _, a := range b.Attributes {
		if a.Description == "" {
			t.Errorf("%s.%s: no description", where, a.Name)
		}
		if a.DescriptionKind != tfprotov6.StringKindMarkdown {
			t.Errorf("%s.%s: description is not Markdown", where, a.Name)
		}
		if a.NestedType != nil {
			walkBlock(t, where+"."+a.Name, &tfprotov6.SchemaBlock{Attributes: a.NestedType.Attributes})
		}
	}
	for _, nb := range b.BlockTypes {
		if nb.Block.Description == "" {
			t.Errorf("%s.%s: block has no description", where, nb.TypeName)
		}
		walkBlock(t, where+"."+nb.TypeName, nb.Block)
	}
}

func TestSchema_secretsAreSensitive(t *testing.T) {
	resp := providerSchema(t)
	sensitive := func(s *tfprotov6.Schema, name string) bool {
		for _, a := range s.Block.Attributes {
			if a.Name == name {
				return a.Sensitive
			}
		}
		t.Fatalf("no attribute %s", name)
		return false
	}
	if !sensitive(resp.Provider, "token") {
		t.Error("provider token: not sensitive")
	}
	if !sensitive(resp.ResourceSchemas["weft_join_key"], "key") {
		t.Error("weft_join_key.key: not sensitive")
	}
}
