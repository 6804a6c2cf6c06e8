// Package validate holds the rules the controller applies to what the provider sends, written once
// in Go so that a bad value fails at `terraform plan`, naming the attribute, instead of at apply.
//
// Every limit and pattern here is copied from the controller's schemas (protocol/src/messages.ts,
// protocol/src/policy.ts, controller/src/identity/labels.ts). The contract test
// (internal/contract) compares each against the controller's `GET /openapi.json`, so a change on
// the controller's side fails the provider's tests instead of drifting silently.
//
// The functions take plain values and return problems (a path relative to the value checked and a
// message); the provider turns them into diagnostics. Values unknown at plan time are not checked.
package validate

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Patterns, exactly as the controller's zod schemas spell them (the contract test compares them
// with the OpenAPI document's `pattern` fields).
const (
	// NamePattern: policy, enrollment policy, node and site names, SPIFFE namespaces (DNS labels).
	NamePattern = `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`
	// SpiffeIDPattern: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
	SpiffeIDPattern = `^spiffe:\/\/([a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?)\/ns\/([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\/sa\/([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)$`
	// ServiceAccountPattern: a SPIFFE service account name.
	ServiceAccountPattern = `^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`
	// LabelKeyPattern: node label keys (the OpenAPI document cannot show record keys; the unit
	// test pins it to the controller's source instead).
	LabelKeyPattern = `^[A-Za-z0-9][A-Za-z0-9_.:/-]*$`
)

// Limits, as the controller's schemas set them.
const (
	NameMaxLength        = 63
	DescriptionMaxLength = 200
	LabelKeyMaxLength    = 63
	LabelValueMaxLength  = 253
	TTLMinSeconds        = 60
	TTLMaxSeconds        = 365 * 24 * 3600
	PortMin              = 1
	PortMax              = 65535
	PortRangeMaxPorts    = 1024 // POLICY_PORT_RANGE_LIMIT
	RulesMax             = 256
	PortsPerRuleMax      = 64
	EntriesPerRuleSrcMax = 4096 // MAX_ENTRIES_PER_RULE_SOURCE
	SelectorAccountMax   = 256
	SelectorRegionMax    = 128
	SelectorNetworkMax   = 512
	SelectorTagKeyMax    = 256
	SelectorTagValueMax  = 256
	DefaultJoinKeyTTL    = 24 * 3600
)

// Closed sets of values.
var (
	Providers = []string{"aws", "azure", "gcp", "onprem"}
	Actions   = []string{"allow", "deny"}
	Protocols = []string{"tcp", "udp", "icmp", "any"}
)

// EnrollmentPolicyProvider refuses what the controller refuses as an enrollment policy's selector
// provider (controller/src/enroll/enrollment-policies.ts): `onprem`, since a keyless enrollment
// must present a signed cloud instance document and on-prem hosts have none.
func EnrollmentPolicyProvider(p string) string {
	if p == "onprem" {
		return "onprem admits nothing: a keyless enrollment must present its cloud's signed instance document (aws, azure or gcp), and on-prem hosts have none; enroll on-prem hosts with a join key (weft_join_key), or select aws, azure or gcp"
	}
	return ""
}

// Identity labels (protocol IdentityLabels, WORKLOAD_NAMESPACES_LABEL).
const (
	LabelIdentity           = "weft:identity"
	LabelNamespace          = "weft:namespace"
	LabelServiceAccount     = "weft:serviceaccount"
	LabelWorkloadNamespaces = "weft:workload-namespaces"
)

var (
	nameRE           = regexp.MustCompile(NamePattern)
	spiffeRE         = regexp.MustCompile(SpiffeIDPattern)
	serviceAccountRE = regexp.MustCompile(ServiceAccountPattern)
	labelKeyRE       = regexp.MustCompile(LabelKeyPattern)
)

// Problem is one refusal: Path is relative to the value checked ("" = the value itself), in the
// provider's attribute names (`rule[0].port[1].end_port`).
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Name checks a DNS-label name (policies, enrollment policies, nodes, namespaces).
func Name(s string) string {
	if len(s) < 1 || len(s) > NameMaxLength || !nameRE.MatchString(s) {
		return fmt.Sprintf("must be a DNS label of 1-%d characters: lowercase letters, digits and '-', starting and ending with a letter or digit (got %q)", NameMaxLength, s)
	}
	return ""
}

// SpiffeID checks the form of a SPIFFE ID (the trust domain is the controller's to check).
func SpiffeID(s string) string {
	if !spiffeRE.MatchString(s) {
		return fmt.Sprintf("must be spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> in lower case (got %q)", s)
	}
	return ""
}

// ServiceAccount checks a SPIFFE service account name.
func ServiceAccount(s string) string {
	if !serviceAccountRE.MatchString(s) {
		return fmt.Sprintf("must be a service account name: lowercase letters, digits, '.' and '-' (got %q)", s)
	}
	return ""
}

// Labels checks node labels as the controller does for a join key or an enrollment policy: each
// key and value, then the identity labels (their form; the trust domain is checked at apply).
func Labels(labels map[string]string) []Problem {
	return append(LabelKeysValues(labels), identityLabels(labels)...)
}

// LabelKeysValues checks each label key and value (what a policy's labels selector needs).
func LabelKeysValues(labels map[string]string) []Problem {
	var out []Problem
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if len(k) < 1 || len(k) > LabelKeyMaxLength || !labelKeyRE.MatchString(k) {
			out = append(out, Problem{fmt.Sprintf("[%q]", k), fmt.Sprintf("label keys are 1-%d letters, digits and _.:/-, starting with a letter or digit", LabelKeyMaxLength)})
		}
		if len(v) > LabelValueMaxLength {
			out = append(out, Problem{fmt.Sprintf("[%q]", k), fmt.Sprintf("label values are at most %d characters (got %d)", LabelValueMaxLength, len(v))})
		}
	}
	return out
}

func identityLabels(labels map[string]string) []Problem {
	var out []Problem
	_, hasNS := labels[LabelNamespace]
	_, hasSA := labels[LabelServiceAccount]
	if whole, ok := labels[LabelIdentity]; ok {
		if msg := SpiffeID(whole); msg != "" {
			out = append(out, Problem{fmt.Sprintf("[%q]", LabelIdentity), msg})
		}
		if hasNS || hasSA {
			out = append(out, Problem{"", fmt.Sprintf("give either %s or %s/%s, not both", LabelIdentity, LabelNamespace, LabelServiceAccount)})
		}
	}
	for _, key := range []string{LabelNamespace, LabelServiceAccount} {
		if v, ok := labels[key]; ok && Name(v) != "" {
			out = append(out, Problem{fmt.Sprintf("[%q]", key), "must be a DNS label: lowercase letters, digits and '-'"})
		}
	}
	if v, ok := labels[LabelWorkloadNamespaces]; ok && strings.TrimSpace(v) != "*" {
		for _, ns := range strings.Split(v, ",") {
			if Name(strings.TrimSpace(ns)) != "" {
				out = append(out, Problem{fmt.Sprintf("[%q]", LabelWorkloadNamespaces), "must be * or comma-separated namespaces (DNS labels: lowercase letters, digits and '-')"})
				break
			}
		}
	}
	return out
}

// CIDR checks an IPv4 CIDR and that it is written as its network address: the controller stores
// "10.1.2.3/8" as "10.0.0.0/8", which Terraform would then show as a change on every plan.
func CIDR(s string) string {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || !canonicalIPv4Text(s) {
		return fmt.Sprintf("must be an IPv4 CIDR like 10.0.0.0/16 (got %q)", s)
	}
	if p.Masked() != p {
		return fmt.Sprintf("write the network address: %s, not %s (the controller stores the network address)", p.Masked(), s)
	}
	return ""
}

// canonicalIPv4Text refuses what the controller's parser refuses and Go's accepts (leading zeros in
// the prefix length, e.g. "10.0.0.0/08").
func canonicalIPv4Text(s string) bool {
	_, length, ok := strings.Cut(s, "/")
	return ok && (length == "0" || (len(length) <= 2 && length[0] != '0'))
}

// Port is one `port` block of a policy rule, with nil for what is not set.
type Port struct {
	Protocol string
	Port     *int64
	EndPort  *int64
}

// Ports checks a rule's ports: protocol, bounds, ranges, and the map entries they expand to.
func Ports(ports []Port) []Problem {
	var out []Problem
	if len(ports) > PortsPerRuleMax {
		out = append(out, Problem{"", fmt.Sprintf("at most %d port blocks per rule (got %d)", PortsPerRuleMax, len(ports))})
	}
	entries := 0
	for i, p := range ports {
		at := fmt.Sprintf("[%d]", i)
		if !slices.Contains(Protocols, p.Protocol) {
			out = append(out, Problem{at + ".protocol", fmt.Sprintf("must be one of tcp, udp, icmp, any in lower case (got %q)", p.Protocol)})
		}
		bad := false
		for _, f := range []struct {
			name string
			v    *int64
		}{{"port", p.Port}, {"end_port", p.EndPort}} {
			if f.v != nil && (*f.v < PortMin || *f.v > PortMax) {
				out = append(out, Problem{at + "." + f.name, fmt.Sprintf("must be %d-%d (got %d)", PortMin, PortMax, *f.v)})
				bad = true
			}
		}
		if bad {
			continue
		}
		if p.Protocol == "icmp" && (p.Port != nil || p.EndPort != nil) {
			out = append(out, Problem{at + ".port", "icmp has no ports; leave port and end_port out"})
			continue
		}
		if p.EndPort != nil {
			switch {
			case p.Port == nil:
				out = append(out, Problem{at + ".end_port", "needs port (the first port of the range)"})
				continue
			case *p.EndPort < *p.Port:
				out = append(out, Problem{at + ".end_port", fmt.Sprintf("must be at least port (%d)", *p.Port)})
				continue
			case *p.EndPort-*p.Port+1 > PortRangeMaxPorts:
				out = append(out, Problem{at + ".end_port", fmt.Sprintf("a range covers at most %d ports (%d-%d is %d); split it, or leave the port out to allow every port", PortRangeMaxPorts, *p.Port, *p.EndPort, *p.EndPort-*p.Port+1)})
				continue
			}
		}
		entries += expanded(p)
	}
	if entries > EntriesPerRuleSrcMax {
		out = append(out, Problem{"", fmt.Sprintf("expands to %d map entries per source; at most %d", entries, EntriesPerRuleSrcMax)})
	}
	return out
}

// expanded is the number of policy map entries one port block becomes (controller expandedPortCount).
func expanded(p Port) int {
	n := 1
	if p.Port != nil {
		last := *p.Port
		if p.EndPort != nil {
			last = *p.EndPort
		}
		n = int(last - *p.Port + 1)
	}
	if p.Protocol == "any" && p.Port != nil {
		n *= 2
	}
	return n
}

// Selector is one `from` or `to` block of a policy rule, with nil for what is not set.
type Selector struct {
	Identity       *string
	Namespace      *string
	ServiceAccount *string
	Labels         map[string]string // nil = not set
	CIDR           *string
}

// SelectorShape checks that a selector is exactly one of {identity}, {namespace, service_account?},
// {labels}, {cidr}, and each field's value.
func SelectorShape(s Selector) []Problem {
	var kinds []string
	if s.Identity != nil {
		kinds = append(kinds, "identity")
	}
	if s.Namespace != nil {
		kinds = append(kinds, "namespace")
	}
	if s.Labels != nil {
		kinds = append(kinds, "labels")
	}
	if s.CIDR != nil {
		kinds = append(kinds, "cidr")
	}
	const help = "must set exactly one of identity, namespace (with an optional service_account), labels, cidr"
	if len(kinds) != 1 {
		got := "none"
		if len(kinds) > 0 {
			got = strings.Join(kinds, ", ")
		}
		return []Problem{{"", fmt.Sprintf("%s (got %s)", help, got)}}
	}
	if s.ServiceAccount != nil && s.Namespace == nil {
		return []Problem{{"service_account", "goes with namespace only"}}
	}
	var out []Problem
	switch kinds[0] {
	case "identity":
		if msg := SpiffeID(*s.Identity); msg != "" {
			out = append(out, Problem{"identity", msg})
		}
	case "namespace":
		if msg := Name(*s.Namespace); msg != "" {
			out = append(out, Problem{"namespace", msg})
		}
		if s.ServiceAccount != nil {
			if msg := ServiceAccount(*s.ServiceAccount); msg != "" {
				out = append(out, Problem{"service_account", msg})
			}
		}
	case "labels":
		if len(s.Labels) == 0 {
			out = append(out, Problem{"labels", "must name at least one label"})
		}
		for _, p := range LabelKeysValues(s.Labels) {
			out = append(out, Problem{"labels" + p.Path, p.Message})
		}
	case "cidr":
		if msg := CIDR(*s.CIDR); msg != "" {
			out = append(out, Problem{"cidr", msg})
		}
	}
	return out
}
