package validate

import (
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func joined(ps []Problem) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "; ")
}

func TestName_acceptsDNSLabelsOnly(t *testing.T) {
	for _, ok := range []string{"a", "web-1", "0", strings.Repeat("a", 63)} {
		if msg := Name(ok); msg != "" {
			t.Errorf("Name(%q): got %q, want accepted", ok, msg)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a_b", "a.b", strings.Repeat("a", 64)} {
		if Name(bad) == "" {
			t.Errorf("Name(%q): got accepted, want refused", bad)
		}
	}
}

func TestLabels_mirrorTheControllersChecks(t *testing.T) {
	cases := []struct {
		labels map[string]string
		want   string // "" = accepted
	}{
		{map[string]string{"env": "prod", "cloud.tag.Name": "x", "weft:gateway": "true"}, ""},
		{map[string]string{"weft:namespace": "shop", "weft:serviceaccount": "web"}, ""},
		{map[string]string{"weft:identity": "spiffe://weft.internal/ns/shop/sa/web"}, ""},
		{map[string]string{"weft:workload-namespaces": "*"}, ""},
		{map[string]string{"weft:workload-namespaces": "a, b"}, ""},
		{map[string]string{"bad key": "x"}, `["bad key"]: label keys are 1-63 letters`},
		{map[string]string{"_x": "x"}, `["_x"]: label keys`},
		{map[string]string{strings.Repeat("k", 64): "x"}, "label keys"},
		{map[string]string{"k": strings.Repeat("v", 254)}, `["k"]: label values are at most 253 characters (got 254)`},
		{map[string]string{"weft:identity": "spiffe://weft.internal/ns/shop"}, `["weft:identity"]: must be spiffe://`},
		{map[string]string{"weft:identity": "spiffe://weft.internal/ns/a/sa/b", "weft:namespace": "a"}, "give either weft:identity or weft:namespace/weft:serviceaccount, not both"},
		{map[string]string{"weft:namespace": "Shop"}, `["weft:namespace"]: must be a DNS label`},
		{map[string]string{"weft:serviceaccount": "a_b"}, `["weft:serviceaccount"]: must be a DNS label`},
		{map[string]string{"weft:workload-namespaces": "a,,b"}, `["weft:workload-namespaces"]: must be * or comma-separated`},
	}
	for _, c := range cases {
		got := joined(Labels(c.labels))
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("Labels(%v): got %q, want %q", c.labels, got, c.want)
		}
	}
}

func TestCIDR_requiresTheNetworkAddress(t *testing.T) {
	cases := map[string]string{
		"10.0.0.0/8":  "",
		"0.0.0.0/0":   "",
		"10.1.2.3/32": "",
		"10.1.2.3/8":  "write the network address: 10.0.0.0/8",
		"10.0.0.0/33": "must be an IPv4 CIDR",
		"10.0.0.0/08": "must be an IPv4 CIDR",
		"010.0.0.0/8": "must be an IPv4 CIDR",
		"fd00::/8":    "must be an IPv4 CIDR",
		"10.0.0.0":    "must be an IPv4 CIDR",
	}
	for in, want := range cases {
		got := CIDR(in)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("CIDR(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestPorts_mirrorTheControllersRules(t *testing.T) {
	cases := []struct {
		name  string
		ports []Port
		want  string
	}{
		{"tcp port", []Port{{Protocol: "tcp", Port: ptr[int64](443)}}, ""},
		{"range", []Port{{Protocol: "udp", Port: ptr[int64](9000), EndPort: ptr[int64](9010)}}, ""},
		{"every port", []Port{{Protocol: "any"}}, ""},
		{"icmp", []Port{{Protocol: "icmp"}}, ""},
		{"widest range", []Port{{Protocol: "tcp", Port: ptr[int64](1), EndPort: ptr[int64](1024)}}, ""},
		{"zero", []Port{{Protocol: "tcp", Port: ptr[int64](0)}}, "[0].port: must be 1-65535 (got 0)"},
		{"too high", []Port{{Protocol: "tcp"}, {Protocol: "tcp", EndPort: ptr[int64](70000), Port: ptr[int64](1)}}, "[1].end_port: must be 1-65535 (got 70000)"},
		{"protocol", []Port{{Protocol: "sctp"}}, "[0].protocol: must be one of tcp, udp, icmp, any"},
		{"upper case", []Port{{Protocol: "TCP"}}, "[0].protocol: must be one of"},
		{"icmp port", []Port{{Protocol: "icmp", Port: ptr[int64](8)}}, "[0].port: icmp has no ports"},
		{"end without start", []Port{{Protocol: "tcp", EndPort: ptr[int64](8)}}, "[0].end_port: needs port"},
		{"backwards", []Port{{Protocol: "tcp", Port: ptr[int64](9), EndPort: ptr[int64](8)}}, "[0].end_port: must be at least port (9)"},
		{"too wide", []Port{{Protocol: "tcp", Port: ptr[int64](1), EndPort: ptr[int64](1025)}}, "[0].end_port: a range covers at most 1024 ports (1-1025 is 1025)"},
		{"too many entries", []Port{
			{Protocol: "any", Port: ptr[int64](1), EndPort: ptr[int64](1024)},
			{Protocol: "any", Port: ptr[int64](2001), EndPort: ptr[int64](3024)},
			{Protocol: "tcp", Port: ptr[int64](5000)},
		}, "expands to 4097 map entries per source; at most 4096"},
	}
	for _, c := range cases {
		got := joined(Ports(c.ports))
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	many := make([]Port, 65)
	for i := range many {
		many[i] = Port{Protocol: "tcp"}
	}
	if got := joined(Ports(many)); !strings.Contains(got, "at most 64 port blocks per rule (got 65)") {
		t.Errorf("65 ports: got %q, want the 64 limit", got)
	}
}

func TestSelectorShape_exactlyOneKind(t *testing.T) {
	cases := []struct {
		name string
		s    Selector
		want string
	}{
		{"identity", Selector{Identity: ptr("spiffe://weft.internal/ns/a/sa/b")}, ""},
		{"namespace", Selector{Namespace: ptr("shop")}, ""},
		{"service account", Selector{Namespace: ptr("shop"), ServiceAccount: ptr("api.v1")}, ""},
		{"labels", Selector{Labels: map[string]string{"tier": "db"}}, ""},
		{"cidr", Selector{CIDR: ptr("192.168.0.0/16")}, ""},
		{"none", Selector{}, "must set exactly one of identity, namespace (with an optional service_account), labels, cidr (got none)"},
		{"two", Selector{Identity: ptr("spiffe://weft.internal/ns/a/sa/b"), CIDR: ptr("10.0.0.0/8")}, "(got identity, cidr)"},
		{"service account alone", Selector{ServiceAccount: ptr("x"), CIDR: ptr("10.0.0.0/8")}, "service_account: goes with namespace only"},
		{"empty labels", Selector{Labels: map[string]string{}}, "labels: must name at least one label"},
		{"bad label", Selector{Labels: map[string]string{"a b": "c"}}, `labels["a b"]: label keys`},
		{"identity labels are plain labels here", Selector{Labels: map[string]string{"weft:namespace": "Shop"}}, ""},
		{"bad identity", Selector{Identity: ptr("spiffe://weft.internal/a")}, "identity: must be spiffe://"},
		{"bad namespace", Selector{Namespace: ptr("a_b")}, "namespace: must be a DNS label"},
		{"bad service account", Selector{Namespace: ptr("a"), ServiceAccount: ptr("-x")}, "service_account: must be a service account name"},
		{"bad cidr", Selector{CIDR: ptr("10.0.0.1/8")}, "cidr: write the network address: 10.0.0.0/8"},
	}
	for _, c := range cases {
		got := joined(SelectorShape(c.s))
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestEnrollmentPolicyProvider_refusesOnpremOnly(t *testing.T) {
	for _, ok := range []string{"aws", "azure", "gcp"} {
		if msg := EnrollmentPolicyProvider(ok); msg != "" {
			t.Errorf("EnrollmentPolicyProvider(%q): got %q, want accepted", ok, msg)
		}
	}
	msg := EnrollmentPolicyProvider("onprem")
	if !strings.HasPrefix(msg, "onprem admits nothing") || !strings.Contains(msg, "enroll on-prem hosts with a join key") {
		t.Errorf("EnrollmentPolicyProvider(%q): got %q, want a refusal that says on-prem hosts join with a join key", "onprem", msg)
	}
}
