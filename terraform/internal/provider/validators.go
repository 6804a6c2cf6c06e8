package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/weft/weft/terraform/internal/validate"
)

// Attribute validators over internal/validate: they run at `terraform validate` and `plan`, and
// skip values not known yet.

// stringCheck refuses a string for which check returns a message.
type stringCheck struct {
	description string
	check       func(string) string
}

var _ validator.String = stringCheck{}

func (v stringCheck) Description(context.Context) string         { return v.description }
func (v stringCheck) MarkdownDescription(context.Context) string { return v.description }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if msg := v.check(req.ConfigValue.ValueString()); msg != "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+attrName(req.Path.String()),
			req.Path.String()+": "+msg+" (the controller refuses it).")
	}
}

func nameValidator() validator.String {
	return stringCheck{"a DNS label: lowercase letters, digits and '-', at most 63 characters", validate.Name}
}

func siteValidator() validator.String {
	return stringCheck{"a site: a DNS label (lowercase letters, digits and '-', at most 63 characters)", validate.Name}
}

// labelsCheck refuses node labels the controller would refuse on a join key or enrollment policy.
type labelsCheck struct{}

var _ validator.Map = labelsCheck{}

func (labelsCheck) Description(context.Context) string {
	return "label keys of letters, digits and _.:/-, values of at most 253 characters, well-formed identity labels"
}
func (v labelsCheck) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (labelsCheck) ValidateMap(ctx context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || !knownMap(req.ConfigValue) {
		return
	}
	labels := stringMap(ctx, req.ConfigValue, &resp.Diagnostics)
	addProblems(&resp.Diagnostics, req.Path, req.Path.String(), validate.Labels(labels))
}
