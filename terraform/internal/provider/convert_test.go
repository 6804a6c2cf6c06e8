package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

func noDiags(t *testing.T, d diag.Diagnostics) {
	t.Helper()
	for _, e := range d {
		t.Errorf("diagnostic: %s: %s", e.Summary(), e.Detail())
	}
}

func asJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// What the controller stores comes back from the state unchanged: otherwise every plan would
// show a change.
func TestPolicyConversion_roundTrips(t *testing.T) {
	docs := []string{
		`{"version":1,"name":"p","rules":[{"action":"allow","from":[{"namespace":"a"}],"to":[{"namespace":"b"}]}]}`,
		`{"version":1,"name":"p","description":"","rules":[{"action":"deny","from":[{"cidr":"0.0.0.0/0"}],"to":[{"identity":"spiffe://weft.internal/ns/a/sa/b"}]}]}`,
		`{"version":1,"name":"p","description":"d","rules":[
		  {"action":"allow","from":[{"labels":{"tier":"app","x":""}},{"namespace":"a","serviceAccount":"b.c"}],"to":[{"labels":{"tier":"db"}}],
		   "ports":[{"protocol":"tcp","port":5432},{"protocol":"udp","port":9000,"endPort":9010},{"protocol":"icmp"},{"protocol":"any"}]},
		  {"action":"deny","from":[{"cidr":"10.0.0.0/8"}],"to":[{"namespace":"b"}]}]}`,
	}
	for _, doc := range docs {
		var p weftapi.Policy
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			t.Fatal(err)
		}
		var d diag.Diagnostics
		back := policyOut(context.Background(), *policyIn(context.Background(), &p, &d), &d)
		noDiags(t, d)
		if got, want := asJSON(t, back), asJSON(t, p); got != want {
			t.Errorf("round trip:\n got %s\nwant %s", got, want)
		}
	}
}

func TestPolicyConversion_emptyPortsAreAbsentPorts(t *testing.T) {
	var p weftapi.Policy
	_ = json.Unmarshal([]byte(`{"version":1,"name":"p","rules":[{"action":"allow","from":[{"namespace":"a"}],"to":[{"namespace":"b"}],"ports":[]}]}`), &p)
	var d diag.Diagnostics
	m := policyIn(context.Background(), &p, &d)
	back := policyOut(context.Background(), *m, &d)
	noDiags(t, d)
	if got := asJSON(t, back.Rules[0]); got != `{"action":"allow","from":[{"namespace":"a"}],"to":[{"namespace":"b"}]}` {
		t.Errorf("ports: [] came back as %s, want no ports (both mean every port)", got)
	}
}

func TestEnrollmentPolicyConversion_roundTrips(t *testing.T) {
	for _, doc := range []string{
		`{"name":"e","selector":{"provider":"aws"},"labels":{}}`,
		`{"name":"e","description":"x","selector":{"provider":"gcp","account":"proj","region":"europe-west1","network":"default","tags":{}},"labels":{"weft:namespace":"a"}}`,
		`{"name":"e","selector":{"provider":"aws","tags":{"role":"web"}},"site":"eu-web","labels":{"a":"b"}}`,
	} {
		var p weftapi.EnrollmentPolicy
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			t.Fatal(err)
		}
		var d diag.Diagnostics
		back := enrollmentPolicyOut(context.Background(), *enrollmentPolicyIn(&p), &d)
		noDiags(t, d)
		if got, want := asJSON(t, back), asJSON(t, p); got != want {
			t.Errorf("round trip:\n got %s\nwant %s", got, want)
		}
	}
}

func TestJoinKeyConversion_selectorPresenceSurvives(t *testing.T) {
	for _, sel := range []string{`null`, `{}`, `{"provider":"aws","tags":{}}`, `{"account":"1","tags":{"env":"prod"}}`} {
		var s *weftapi.InstanceSelector
		if err := json.Unmarshal([]byte(sel), &s); err != nil {
			t.Fatal(err)
		}
		info := weftapi.JoinKeyInfo{ID: "0123456789ab", Labels: map[string]string{"a": "b"}, InstanceSelector: s,
			CreatedAt: "2026-12-05T10:00:00.000Z", ExpiresAt: "2026-12-06T10:00:00.000Z", State: "active"}
		m := joinKeyModel{Key: types.StringUnknown(), CAHash: types.StringUnknown()}
		joinKeyFromAPI(&m, &info)
		var d diag.Diagnostics
		req := joinKeyRequest(context.Background(), m, &d)
		noDiags(t, d)
		if got := asJSON(t, req.InstanceSelector); got != asJSON(t, s) {
			t.Errorf("instance selector %s came back as %s", sel, got)
		}
		if req.TTLSeconds != 86400 || !reflect.DeepEqual(req.Labels, info.Labels) {
			t.Errorf("ttl %d labels %v: want 86400 and %v", req.TTLSeconds, req.Labels, info.Labels)
		}
		if !m.Key.IsNull() || !m.CAHash.IsNull() {
			t.Errorf("key/ca_hash after a read: got %v/%v, want null (never read back)", m.Key, m.CAHash)
		}
	}
}

func TestJoinKeyGone(t *testing.T) {
	cases := []struct {
		state    string
		recreate bool
		gone     bool
	}{
		{"active", false, false}, {"active", true, false},
		{"revoked", false, true}, {"revoked", true, true},
		{"expired", false, false}, {"expired", true, true},
		{"used", false, false}, {"used", true, true},
	}
	for _, c := range cases {
		if got := joinKeyGone(&weftapi.JoinKeyInfo{ID: "k", State: c.state}, c.recreate) != ""; got != c.gone {
			t.Errorf("state %s, recreate_if_invalid %v: planned anew %v, want %v", c.state, c.recreate, got, c.gone)
		}
	}
}

func TestTTLOf(t *testing.T) {
	if got := ttlOf("2026-12-05T10:00:00.000Z", "2026-12-05T11:00:00.000Z", types.Int64Null()); got != 3600 {
		t.Errorf("ttlOf one hour: got %d, want 3600", got)
	}
	if got := ttlOf("garbage", "2026-12-05T11:00:00.000Z", types.Int64Value(77)); got != 77 {
		t.Errorf("ttlOf unparsable: got %d, want the fallback 77", got)
	}
}

func TestRelPath_namesTheAttribute(t *testing.T) {
	base := path.Root("rule").AtListIndex(0).AtName("port")
	cases := map[string]string{
		"":                  "rule[0].port",
		"[1].end_port":      "rule[0].port[1].end_port",
		`labels["a b"]`:     `rule[0].port.labels["a b"]`,
		`[2].labels["k"]`:   `rule[0].port[2].labels["k"]`,
		"service_account":   "rule[0].port.service_account",
		`["weft:identity"]`: `rule[0].port["weft:identity"]`,
	}
	for rel, want := range cases {
		if got := relPath(base, rel).String(); got != want {
			t.Errorf("relPath(%q): got %s, want %s", rel, got, want)
		}
	}
	var d diag.Diagnostics
	addProblems(&d, base, "rule[0].port", []validate.Problem{{Path: "[1].end_port", Message: "must be at least port (9)"}})
	if len(d) != 1 || d[0].Detail() != "rule[0].port[1].end_port: must be at least port (9) (the controller refuses it)." || d[0].Summary() != "Invalid end_port" {
		t.Errorf("addProblems: got %v", d)
	}
}

func TestFilters(t *testing.T) {
	n := &weftapi.Node{Site: "aws", Labels: map[string]string{"tier": "db", "env": "prod"}}
	for _, c := range []struct {
		site   string
		labels map[string]string
		want   bool
	}{
		{"", nil, true}, {"aws", nil, true}, {"gcp", nil, false},
		{"", map[string]string{"tier": "db"}, true}, {"aws", map[string]string{"tier": "db", "env": "prod"}, true},
		{"", map[string]string{"tier": "app"}, false}, {"", map[string]string{"zone": ""}, false},
	} {
		if got := nodeMatches(n, c.site, c.labels); got != c.want {
			t.Errorf("nodeMatches(site %q, labels %v): got %v, want %v", c.site, c.labels, got, c.want)
		}
	}
	i := &weftapi.InventoryInstance{Provider: "aws", Account: "1", Region: "eu-west-1", Network: "vpc-1", State: "running", Tags: map[string]string{"role": "web"}}
	for _, c := range []struct {
		f    instanceFilter
		want bool
	}{
		{instanceFilter{}, true},
		{instanceFilter{provider: "aws", account: "1", region: "eu-west-1", network: "vpc-1", state: "running", tags: map[string]string{"role": "web"}}, true},
		{instanceFilter{provider: "gcp"}, false}, {instanceFilter{state: "stopped"}, false},
		{instanceFilter{tags: map[string]string{"role": "db"}}, false},
	} {
		if got := c.f.matches(i); got != c.want {
			t.Errorf("instanceFilter %+v: got %v, want %v", c.f, got, c.want)
		}
	}
}

func TestJoinKeyConversion_siteSurvives(t *testing.T) {
	for _, site := range []*string{nil, ptr("lab")} {
		info := weftapi.JoinKeyInfo{ID: "0123456789ab", Labels: map[string]string{"weft:gateway": "true"}, Site: site,
			CreatedAt: "2026-12-05T10:00:00.000Z", ExpiresAt: "2026-12-06T10:00:00.000Z", State: "active"}
		m := joinKeyModel{Key: types.StringUnknown(), CAHash: types.StringUnknown()}
		joinKeyFromAPI(&m, &info)
		var d diag.Diagnostics
		req := joinKeyRequest(context.Background(), m, &d)
		noDiags(t, d)
		if got, want := asJSON(t, req.Site), asJSON(t, site); got != want {
			t.Errorf("site %s came back as %s", want, got)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestServiceConversion_roundTrips(t *testing.T) {
	for _, doc := range []string{
		`{"version":1,"name":"api","namespace":"shop","ports":[{"port":80,"protocol":"tcp"}],"algorithm":"round-robin","backends":[{"namespace":"shop"}],"locality":"site"}`,
		`{"version":1,"name":"api","namespace":"shop","description":"d","ports":[{"name":"http","port":80,"protocol":"tcp","targetPort":8080},{"port":53,"protocol":"udp"}],
		  "algorithm":"weighted","subsets":[{"name":"a","weight":0,"backends":[{"identity":"spiffe://weft.internal/ns/shop/sa/api"}]},{"name":"b","weight":5,"backends":[{"labels":{"x":"y"},"sites":["s1"],"nodes":["n1","n2"]}]}],
		  "locality":"any","healthCheck":{"protocol":"http","port":8081,"path":"/h","intervalMs":500,"timeoutMs":100,"healthyThreshold":1,"unhealthyThreshold":3},
		  "rateLimit":{"connectionsPerSecond":10,"burst":20},"vip":"100.96.0.9"}`,
	} {
		var s weftapi.Service
		if err := json.Unmarshal([]byte(doc), &s); err != nil {
			t.Fatal(err)
		}
		m := serviceIn(&s, "100.96.0.9", "api.shop.svc.weft")
		back := serviceOut(m)
		if s.VIP == nil {
			back.VIP = nil // the allocated VIP is state, not part of a document that did not ask for one
		}
		if got, want := asJSON(t, back), asJSON(t, s); got != want {
			t.Errorf("round trip:\n got %s\nwant %s", got, want)
		}
		if problems := serviceProblems(s); len(problems) != 0 {
			t.Errorf("serviceProblems(%s): got %v, want none", doc, problems)
		}
	}
}

func TestServiceProblems_mirrorTheControllersRefinements(t *testing.T) {
	ns := ptr("shop")
	base := func() weftapi.Service {
		return weftapi.Service{Version: 1, Name: "a", Namespace: "b", Algorithm: "round-robin", Locality: "site",
			Ports: []weftapi.ServicePort{{Port: 80, Protocol: "tcp"}}, Backends: []weftapi.BackendSelector{{Namespace: ns}}}
	}
	cases := []struct {
		name   string
		change func(*weftapi.Service)
		want   string
	}{
		{"both backends and subsets", func(s *weftapi.Service) {
			s.Subsets = []weftapi.ServiceSubset{{Name: "x", Weight: 1, Backends: s.Backends}}
		}, "backends: give exactly one of backends"},
		{"duplicate port", func(s *weftapi.Service) { s.Ports = append(s.Ports, weftapi.ServicePort{Port: 80, Protocol: "tcp"}) }, "ports[1].port: duplicate port tcp/80"},
		{"udp and tcp on one port are two ports", func(s *weftapi.Service) { s.Ports = append(s.Ports, weftapi.ServicePort{Port: 80, Protocol: "udp"}) }, ""},
		{"empty selector", func(s *weftapi.Service) { s.Backends = []weftapi.BackendSelector{{}} }, "backends[0]: must name exactly one of identity, namespace (with service_account), labels; got none"},
		{"empty labels", func(s *weftapi.Service) { s.Backends = []weftapi.BackendSelector{{Labels: map[string]string{}}} }, "backends[0].labels: must name at least one label"},
		{"duplicate subset", func(s *weftapi.Service) {
			s.Algorithm, s.Backends = "weighted", nil
			s.Subsets = []weftapi.ServiceSubset{{Name: "x", Weight: 1, Backends: []weftapi.BackendSelector{{Namespace: ns}}}, {Name: "x", Weight: 1, Backends: []weftapi.BackendSelector{{Namespace: ns}}}}
		}, "subsets[1].name: duplicate subset x (also subsets[0].name)"},
		{"subset selector", func(s *weftapi.Service) {
			s.Algorithm, s.Backends = "weighted", nil
			s.Subsets = []weftapi.ServiceSubset{{Name: "x", Weight: 1, Backends: []weftapi.BackendSelector{{ServiceAccount: ptr("api"), Labels: map[string]string{"a": "b"}}}}}
		}, "subsets[0].backends[0].service_account: needs namespace"},
	}
	for _, c := range cases {
		s := base()
		c.change(&s)
		var got []string
		for _, p := range serviceProblems(s) {
			got = append(got, p.String())
		}
		joined := fmt.Sprint(got)
		if (c.want == "") != (len(got) == 0) || (c.want != "" && !strings.Contains(joined, c.want)) {
			t.Errorf("%s: got %v, want %q", c.name, got, c.want)
		}
	}
}
