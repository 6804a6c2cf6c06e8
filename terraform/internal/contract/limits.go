package contract

import (
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

const (
	keyBody    = "/paths/~1v1~1keys/post/requestBody/content/application~1json/schema"
	policyBody = "/paths/~1v1~1policies~1{name}/put/requestBody/content/application~1json/schema"
	policyOut  = "/paths/~1v1~1policies~1{name}/get/responses/200/content/application~1json/schema"
	enrollBody = "/paths/~1v1~1enrollment-policies~1{name}/put/requestBody/content/application~1json/schema"
	rule       = policyBody + "/properties/rules/items"
	selector   = keyBody + "/properties/instanceSelector/properties"
	service    = "/paths/~1v1~1services~1{namespace}~1{name}/put/requestBody/content/application~1json/schema/properties"
)

// Limits are the provider's plan-time checks (internal/validate) and where the controller's
// OpenAPI document states each. What the document cannot state (label key patterns, the identity
// labels, port range sizes) is pinned to the controller's source by TestSourceLimits.
func Limits() []Limit {
	return []Limit{
		{policyBody + "/properties/name/pattern", validate.NamePattern},
		{policyBody + "/properties/name/maxLength", validate.NameMaxLength},
		{policyBody + "/properties/description/maxLength", validate.DescriptionMaxLength},
		{policyBody + "/properties/rules/minItems", 1},
		{policyBody + "/properties/rules/maxItems", validate.RulesMax},
		{rule + "/properties/action/enum", validate.Actions},
		{rule + "/properties/from/minItems", 1},
		{rule + "/properties/to/minItems", 1},
		{rule + "/properties/from/items/anyOf/0/properties/identity/pattern", validate.SpiffeIDPattern},
		{rule + "/properties/from/items/anyOf/1/properties/namespace/pattern", validate.NamePattern},
		{rule + "/properties/from/items/anyOf/1/properties/serviceAccount/pattern", validate.ServiceAccountPattern},
		{rule + "/properties/from/items/anyOf/2/properties/labels/additionalProperties/maxLength", validate.LabelValueMaxLength},
		{rule + "/properties/to/items/anyOf/0/properties/identity/pattern", validate.SpiffeIDPattern},
		{rule + "/properties/ports/maxItems", validate.PortsPerRuleMax},
		{rule + "/properties/ports/items/properties/port/minimum", validate.PortMin},
		{rule + "/properties/ports/items/properties/port/maximum", validate.PortMax},
		{rule + "/properties/ports/items/properties/endPort/minimum", validate.PortMin},
		{rule + "/properties/ports/items/properties/endPort/maximum", validate.PortMax},
		{policyOut + "/properties/rules/items/properties/ports/items/properties/protocol/enum", validate.Protocols},
		{keyBody + "/properties/ttlSeconds/minimum", validate.TTLMinSeconds},
		{keyBody + "/properties/ttlSeconds/maximum", validate.TTLMaxSeconds},
		{keyBody + "/properties/ttlSeconds/default", validate.DefaultJoinKeyTTL},
		{keyBody + "/properties/description/maxLength", validate.DescriptionMaxLength},
		{keyBody + "/properties/labels/additionalProperties/maxLength", validate.LabelValueMaxLength},
		{keyBody + "/properties/site/pattern", validate.NamePattern},
		{keyBody + "/properties/site/maxLength", validate.NameMaxLength},
		{selector + "/provider/enum", validate.Providers},
		{selector + "/account/minLength", 1},
		{selector + "/account/maxLength", validate.SelectorAccountMax},
		{selector + "/region/maxLength", validate.SelectorRegionMax},
		{selector + "/network/maxLength", validate.SelectorNetworkMax},
		{selector + "/tags/additionalProperties/maxLength", validate.SelectorTagValueMax},
		{enrollBody + "/properties/name/pattern", validate.NamePattern},
		{enrollBody + "/properties/description/maxLength", validate.DescriptionMaxLength},
		{enrollBody + "/properties/selector/required", []string{"provider"}},
		{enrollBody + "/properties/site/pattern", validate.NamePattern},
		{enrollBody + "/properties/site/maxLength", validate.NameMaxLength},
		{enrollBody + "/properties/labels/additionalProperties/maxLength", validate.LabelValueMaxLength},
		{service + "/name/pattern", validate.NamePattern},
		{service + "/namespace/pattern", validate.NamePattern},
		{service + "/description/maxLength", validate.DescriptionMaxLength},
		{service + "/ports/minItems", 1},
		{service + "/ports/maxItems", 16},
		{service + "/ports/items/properties/port/minimum", validate.PortMin},
		{service + "/ports/items/properties/port/maximum", validate.PortMax},
		{service + "/algorithm/enum", validate.ServiceAlgorithms},
		{service + "/locality/enum", validate.ServiceLocalities},
		{service + "/backends/maxItems", 32},
		{service + "/subsets/maxItems", 16},
		{service + "/subsets/items/properties/weight/maximum", 10000},
		{service + "/healthCheck/properties/protocol/enum", validate.ServiceHealthKinds},
		{service + "/healthCheck/properties/intervalMs/minimum", 100},
		{service + "/healthCheck/properties/intervalMs/maximum", 60000},
		{service + "/healthCheck/properties/healthyThreshold/maximum", 10},
		{service + "/rateLimit/properties/connectionsPerSecond/maximum", 1000000},
		{"/paths/~1v1~1keys/post/responses/201/content/application~1json/schema/properties/controller/properties/caHash/pattern", weftapi.CAHashPattern},
	}
}
