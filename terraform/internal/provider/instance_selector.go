package provider

import (
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/validate"
)

// instanceSelectorAttributes is the schema of an instance selector (protocol InstanceSelector):
// every attribute set must equal the inventory's record of the instance. An enrollment policy's
// selector must name its provider, and not `onprem` (on-prem hosts have no signed instance document
// to be admitted by); a join key's need not name one.
func instanceSelectorAttributes(forPolicy bool) map[string]schema.Attribute {
	providerAttr := schema.StringAttribute{
		Optional:            true,
		MarkdownDescription: "Cloud of the instance: `aws`, `azure`, `gcp` or `onprem`.",
		Validators:          []validator.String{stringvalidator.OneOf(validate.Providers...)},
	}
	if forPolicy {
		providerAttr = schema.StringAttribute{
			Required: true,
			MarkdownDescription: "Cloud of the instance: `aws`, `azure` or `gcp`. Not `onprem`: a keyless enrollment presents its cloud's signed " +
				"instance document, which on-prem hosts do not have; they join with a `weft_join_key`.",
			Validators: []validator.String{
				stringvalidator.OneOf(validate.Providers...),
				stringCheck{"not onprem: on-prem hosts join with a join key", validate.EnrollmentPolicyProvider},
			},
		}
	}
	return map[string]schema.Attribute{
		"provider": providerAttr,
		"account": schema.StringAttribute{
			Optional:            true,
			MarkdownDescription: "AWS account id, Azure subscription id, GCP project id, or on-prem site name.",
			Validators:          []validator.String{stringvalidator.LengthBetween(1, validate.SelectorAccountMax)},
		},
		"region": schema.StringAttribute{
			Optional:            true,
			MarkdownDescription: "AWS region, Azure location, GCP region.",
			Validators:          []validator.String{stringvalidator.LengthBetween(1, validate.SelectorRegionMax)},
		},
		"network": schema.StringAttribute{
			Optional:            true,
			MarkdownDescription: "VPC id, VNet resource id, GCE network name, or on-prem network name.",
			Validators:          []validator.String{stringvalidator.LengthBetween(1, validate.SelectorNetworkMax)},
		},
		"tags": schema.MapAttribute{
			Optional:            true,
			ElementType:         types.StringType,
			MarkdownDescription: "Tags the instance must carry, each with exactly this value (other tags are ignored).",
			Validators: []validator.Map{
				mapvalidator.KeysAre(stringvalidator.LengthBetween(1, validate.SelectorTagKeyMax)),
				mapvalidator.ValueStringsAre(stringvalidator.LengthAtMost(validate.SelectorTagValueMax)),
			},
		},
	}
}
