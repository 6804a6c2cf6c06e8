package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

// Conversions between Terraform values and the API's bodies. Pure functions: the unit tests
// check that what goes out comes back equal, including "absent" against "empty".

func strPtr(v types.String) *string {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	s := v.ValueString()
	return &s
}

func strFrom(p *string) types.String {
	if p == nil {
		return types.StringNull()
	}
	return types.StringValue(*p)
}

func int64Ptr(v types.Int64) *int64 {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	n := v.ValueInt64()
	return &n
}

func int64From(p *int64) types.Int64 {
	if p == nil {
		return types.Int64Null()
	}
	return types.Int64Value(*p)
}

// stringMap turns a known map into Go; nil for null (and unknown, which callers check first).
func stringMap(ctx context.Context, m types.Map, diags *diag.Diagnostics) map[string]string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	out := map[string]string{}
	diags.Append(m.ElementsAs(ctx, &out, false)...)
	return out
}

// mapValue is the Terraform value of a Go map; nil is null, an empty map is an empty map.
func mapValue(m map[string]string) types.Map {
	if m == nil {
		return types.MapNull(types.StringType)
	}
	elems := make(map[string]attr.Value, len(m))
	for k, v := range m {
		elems[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, elems)
}

// knownMap reports whether every element of m is known (a map may be known with unknown values).
func knownMap(m types.Map) bool {
	if m.IsUnknown() {
		return false
	}
	for _, v := range m.Elements() {
		if v.IsUnknown() {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- instance selectors

var instanceSelectorAttrTypes = map[string]attr.Type{
	"provider": types.StringType,
	"account":  types.StringType,
	"region":   types.StringType,
	"network":  types.StringType,
	"tags":     types.MapType{ElemType: types.StringType},
}

type instanceSelectorModel struct {
	Provider types.String `tfsdk:"provider"`
	Account  types.String `tfsdk:"account"`
	Region   types.String `tfsdk:"region"`
	Network  types.String `tfsdk:"network"`
	Tags     types.Map    `tfsdk:"tags"`
}

// instanceSelectorOut converts a known selector object; nil for null.
func instanceSelectorOut(ctx context.Context, o types.Object, diags *diag.Diagnostics) *weftapi.InstanceSelector {
	if o.IsNull() || o.IsUnknown() {
		return nil
	}
	var m instanceSelectorModel
	diags.Append(o.As(ctx, &m, basetypes.ObjectAsOptions{})...)
	s := &weftapi.InstanceSelector{
		Provider: m.Provider.ValueString(),
		Account:  m.Account.ValueString(),
		Region:   m.Region.ValueString(),
		Network:  m.Network.ValueString(),
	}
	if tags := stringMap(ctx, m.Tags, diags); tags != nil {
		s.Tags = &tags
	}
	return s
}

func optString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// instanceSelectorIn is the Terraform value of a selector the controller returned.
func instanceSelectorIn(s *weftapi.InstanceSelector) types.Object {
	if s == nil {
		return types.ObjectNull(instanceSelectorAttrTypes)
	}
	tags := types.MapNull(types.StringType)
	if s.Tags != nil {
		tags = mapValue(*s.Tags)
	}
	return types.ObjectValueMust(instanceSelectorAttrTypes, map[string]attr.Value{
		"provider": optString(s.Provider),
		"account":  optString(s.Account),
		"region":   optString(s.Region),
		"network":  optString(s.Network),
		"tags":     tags,
	})
}

// ---------------------------------------------------------------- diagnostics

// addProblems reports each problem as an error on the attribute it names, below base. readable is
// base as a user reads it (`rule[0].port`), put in front of each message.
func addProblems(diags *diag.Diagnostics, base path.Path, readable string, problems []validate.Problem) {
	for _, p := range problems {
		where := readable
		if p.Path != "" {
			if strings.HasPrefix(p.Path, "[") || where == "" {
				where += p.Path
			} else {
				where += "." + p.Path
			}
		}
		diags.AddAttributeError(relPath(base, p.Path), "Invalid "+attrName(where),
			fmt.Sprintf("%s: %s (the controller refuses it).", where, p.Message))
	}
}

func attrName(where string) string {
	if i := strings.LastIndexAny(where, ".["); i >= 0 && where[i] == '.' {
		return where[i+1:]
	}
	if i := strings.Index(where, "["); i > 0 {
		return where[:i]
	}
	return where
}

// relPath appends a problem's relative path (`[1].end_port`, `labels["k"]`) to base.
func relPath(base path.Path, rel string) path.Path {
	p := base
	for rel != "" {
		switch {
		case strings.HasPrefix(rel, "[\""):
			end := strings.Index(rel, "\"]")
			if end < 0 {
				return p
			}
			key, err := strconv.Unquote(rel[1 : end+1])
			if err != nil {
				return p
			}
			p, rel = p.AtMapKey(key), rel[end+2:]
		case strings.HasPrefix(rel, "["):
			end := strings.Index(rel, "]")
			n, err := strconv.Atoi(rel[1:max(end, 1)])
			if end < 0 || err != nil {
				return p
			}
			p, rel = p.AtListIndex(n), rel[end+1:]
		default:
			rel = strings.TrimPrefix(rel, ".")
			end := strings.IndexAny(rel, ".[")
			if end < 0 {
				end = len(rel)
			}
			p, rel = p.AtName(rel[:end]), rel[end:]
		}
	}
	return p
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
