package provider

import (
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

// The weft_service model and its conversions (protocol/src/service.ts), and the plan-time checks
// that span attributes (pure functions over the API's document, as the controller checks it).

type serviceModel struct {
	ID          types.String       `tfsdk:"id"`
	Namespace   types.String       `tfsdk:"namespace"`
	Name        types.String       `tfsdk:"name"`
	Description types.String       `tfsdk:"description"`
	Ports       []servicePortModel `tfsdk:"ports"`
	Algorithm   types.String       `tfsdk:"algorithm"`
	Backends    []backendModel     `tfsdk:"backends"`
	Subsets     []subsetModel      `tfsdk:"subsets"`
	Locality    types.String       `tfsdk:"locality"`
	HealthCheck *healthCheckModel  `tfsdk:"health_check"`
	RateLimit   *rateLimitModel    `tfsdk:"rate_limit"`
	VIP         types.String       `tfsdk:"vip"`
	DNSName     types.String       `tfsdk:"dns_name"`
}

type servicePortModel struct {
	Name       types.String `tfsdk:"name"`
	Port       types.Int64  `tfsdk:"port"`
	Protocol   types.String `tfsdk:"protocol"`
	TargetPort types.Int64  `tfsdk:"target_port"`
}

type backendModel struct {
	Identity       types.String      `tfsdk:"identity"`
	Namespace      types.String      `tfsdk:"namespace"`
	ServiceAccount types.String      `tfsdk:"service_account"`
	Labels         map[string]string `tfsdk:"labels"`
	Sites          []string          `tfsdk:"sites"`
	Nodes          []string          `tfsdk:"nodes"`
}

type subsetModel struct {
	Name     types.String   `tfsdk:"name"`
	Weight   types.Int64    `tfsdk:"weight"`
	Backends []backendModel `tfsdk:"backends"`
}

type healthCheckModel struct {
	Protocol           types.String `tfsdk:"protocol"`
	Port               types.Int64  `tfsdk:"port"`
	Path               types.String `tfsdk:"path"`
	IntervalMs         types.Int64  `tfsdk:"interval_ms"`
	TimeoutMs          types.Int64  `tfsdk:"timeout_ms"`
	HealthyThreshold   types.Int64  `tfsdk:"healthy_threshold"`
	UnhealthyThreshold types.Int64  `tfsdk:"unhealthy_threshold"`
}

type rateLimitModel struct {
	ConnectionsPerSecond types.Int64 `tfsdk:"connections_per_second"`
	Burst                types.Int64 `tfsdk:"burst"`
}

// serviceOut is the document for a plan (defaults already filled by the schema).
func serviceOut(m serviceModel) weftapi.Service {
	s := weftapi.Service{
		Version: 1, Name: m.Name.ValueString(), Namespace: m.Namespace.ValueString(), Description: strPtr(m.Description),
		Algorithm: m.Algorithm.ValueString(), Locality: m.Locality.ValueString(), VIP: strPtr(m.VIP),
		Backends: backendsOut(m.Backends),
	}
	for _, p := range m.Ports {
		s.Ports = append(s.Ports, weftapi.ServicePort{Name: strPtr(p.Name), Port: p.Port.ValueInt64(), Protocol: p.Protocol.ValueString(), TargetPort: int64Ptr(p.TargetPort)})
	}
	for _, x := range m.Subsets {
		s.Subsets = append(s.Subsets, weftapi.ServiceSubset{Name: x.Name.ValueString(), Weight: x.Weight.ValueInt64(), Backends: backendsOut(x.Backends)})
	}
	if h := m.HealthCheck; h != nil {
		s.HealthCheck = &weftapi.HealthCheck{Protocol: h.Protocol.ValueString(), Port: int64Ptr(h.Port), Path: strPtr(h.Path), IntervalMs: h.IntervalMs.ValueInt64(),
			TimeoutMs: int64Ptr(h.TimeoutMs), HealthyThreshold: h.HealthyThreshold.ValueInt64(), UnhealthyThreshold: h.UnhealthyThreshold.ValueInt64()}
	}
	if r := m.RateLimit; r != nil {
		s.RateLimit = &weftapi.RateLimit{ConnectionsPerSecond: r.ConnectionsPerSecond.ValueInt64(), Burst: int64Ptr(r.Burst)}
	}
	return s
}

func backendsOut(in []backendModel) []weftapi.BackendSelector {
	var out []weftapi.BackendSelector
	for _, b := range in {
		out = append(out, weftapi.BackendSelector{Identity: strPtr(b.Identity), Namespace: strPtr(b.Namespace), ServiceAccount: strPtr(b.ServiceAccount),
			Labels: b.Labels, Sites: b.Sites, Nodes: b.Nodes})
	}
	return out
}

// serviceIn is the state for a stored document, its VIP and DNS name.
func serviceIn(s *weftapi.Service, vip, dnsName string) serviceModel {
	m := serviceModel{
		ID: types.StringValue(s.Namespace + "/" + s.Name), Namespace: types.StringValue(s.Namespace), Name: types.StringValue(s.Name),
		Description: strFrom(s.Description), Algorithm: types.StringValue(s.Algorithm), Locality: types.StringValue(s.Locality),
		Backends: backendsIn(s.Backends), VIP: types.StringValue(vip), DNSName: types.StringValue(dnsName),
	}
	for _, p := range s.Ports {
		m.Ports = append(m.Ports, servicePortModel{Name: strFrom(p.Name), Port: types.Int64Value(p.Port), Protocol: types.StringValue(p.Protocol), TargetPort: int64From(p.TargetPort)})
	}
	for _, x := range s.Subsets {
		m.Subsets = append(m.Subsets, subsetModel{Name: types.StringValue(x.Name), Weight: types.Int64Value(x.Weight), Backends: backendsIn(x.Backends)})
	}
	if h := s.HealthCheck; h != nil {
		m.HealthCheck = &healthCheckModel{Protocol: types.StringValue(h.Protocol), Port: int64From(h.Port), Path: strFrom(h.Path), IntervalMs: types.Int64Value(h.IntervalMs),
			TimeoutMs: int64From(h.TimeoutMs), HealthyThreshold: types.Int64Value(h.HealthyThreshold), UnhealthyThreshold: types.Int64Value(h.UnhealthyThreshold)}
	}
	if r := s.RateLimit; r != nil {
		m.RateLimit = &rateLimitModel{ConnectionsPerSecond: types.Int64Value(r.ConnectionsPerSecond), Burst: int64From(r.Burst)}
	}
	return m
}

func backendsIn(in []weftapi.BackendSelector) []backendModel {
	var out []backendModel
	for _, b := range in {
		out = append(out, backendModel{Identity: strFrom(b.Identity), Namespace: strFrom(b.Namespace), ServiceAccount: strFrom(b.ServiceAccount),
			Labels: b.Labels, Sites: b.Sites, Nodes: b.Nodes})
	}
	return out
}

// serviceProblems are the controller's checks that span attributes (protocol Service and
// BackendSelector refinements), in the provider's attribute names.
func serviceProblems(s weftapi.Service) []validate.Problem {
	var out []validate.Problem
	add := func(path, format string, args ...any) {
		out = append(out, validate.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if (s.Backends == nil) == (s.Subsets == nil) {
		add("backends", "give exactly one of backends (all alike) or subsets (weighted groups)")
	}
	if s.Algorithm == "weighted" && s.Subsets == nil {
		add("subsets", "algorithm weighted needs subsets with weights")
	}
	if s.Algorithm != "weighted" && s.Subsets != nil {
		add("subsets", "subsets carry weights: use algorithm weighted, or list backends for %s", s.Algorithm)
	}
	if s.Subsets != nil {
		allZero := true
		seen := map[string]int{}
		for i, x := range s.Subsets {
			allZero = allZero && x.Weight == 0
			if first, dup := seen[x.Name]; dup {
				add(fmt.Sprintf("subsets[%d].name", i), "duplicate subset %s (also subsets[%d].name)", x.Name, first)
			} else {
				seen[x.Name] = i
			}
			out = append(out, backendProblems(fmt.Sprintf("subsets[%d].backends", i), x.Backends)...)
		}
		if allZero {
			add("subsets", "at least one subset needs a weight above 0")
		}
	}
	out = append(out, backendProblems("backends", s.Backends)...)
	seenPorts := map[string]int{}
	for i, p := range s.Ports {
		key := fmt.Sprintf("%s/%d", p.Protocol, p.Port)
		if first, dup := seenPorts[key]; dup {
			add(fmt.Sprintf("ports[%d].port", i), "duplicate port %s (also ports[%d])", key, first)
		} else {
			seenPorts[key] = i
		}
	}
	if h := s.HealthCheck; h != nil {
		if h.Path != nil && h.Protocol != "http" {
			add("health_check.path", "only an http check has a path")
		}
		if h.TimeoutMs != nil && *h.TimeoutMs > h.IntervalMs {
			add("health_check.timeout_ms", "must not exceed interval_ms (%d)", h.IntervalMs)
		}
	}
	return out
}

func backendProblems(where string, backends []weftapi.BackendSelector) []validate.Problem {
	var out []validate.Problem
	for i, b := range backends {
		var kinds []string
		if b.Identity != nil {
			kinds = append(kinds, "identity")
		}
		if b.Namespace != nil {
			kinds = append(kinds, "namespace")
		}
		if b.Labels != nil {
			kinds = append(kinds, "labels")
		}
		at := fmt.Sprintf("%s[%d]", where, i)
		if len(kinds) != 1 {
			got := "none"
			if len(kinds) > 0 {
				got = strings.Join(kinds, " and ")
			}
			out = append(out, validate.Problem{Path: at, Message: "must name exactly one of identity, namespace (with service_account), labels; got " + got})
		}
		if b.ServiceAccount != nil && b.Namespace == nil {
			out = append(out, validate.Problem{Path: at + ".service_account", Message: "needs namespace"})
		}
		if b.Labels != nil && len(b.Labels) == 0 {
			out = append(out, validate.Problem{Path: at + ".labels", Message: "must name at least one label"})
		}
	}
	return out
}
