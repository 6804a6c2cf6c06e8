package contract

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/weft/weft/terraform/internal/acctest"
	"github.com/weft/weft/terraform/internal/validate"
	"github.com/weft/weft/terraform/internal/weftapi"
)

func TestMain(m *testing.M) { os.Exit(acctest.Main(m)) }

// liveDocument is the OpenAPI document a real controller of this repository serves.
func liveDocument(t *testing.T) Document {
	t.Helper()
	ctl := acctest.Shared(t)
	var doc Document
	if err := ctl.Client().Do(t.Context(), "GET", "/openapi.json", nil, &doc, 200); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestAccContract_clientMatchesTheControllersOpenAPI(t *testing.T) {
	doc := liveDocument(t)
	if problems := CheckRoutes(doc, weftapi.Routes()); len(problems) > 0 {
		t.Fatalf("the client disagrees with GET /openapi.json:\n  %s", strings.Join(problems, "\n  "))
	}
}

func TestAccContract_planTimeChecksMatchTheControllersLimits(t *testing.T) {
	doc := liveDocument(t)
	if problems := CheckLimits(doc, Limits()); len(problems) > 0 {
		t.Fatalf("internal/validate disagrees with GET /openapi.json:\n  %s", strings.Join(problems, "\n  "))
	}
}

// The checker itself: a document that differs from the client in each way must be reported.
func TestContract_reportsEachKindOfDrift(t *testing.T) {
	type body struct {
		Name   string            `json:"name"`
		Port   *int64            `json:"port,omitempty"`
		Labels map[string]string `json:"labels"`
		Extra  string            `json:"extra,omitempty"`
		Count  int64             `json:"count"`
	}
	route := weftapi.Route{Method: "PUT", Path: "/v1/things/{name}", Request: reflect.TypeFor[body](), Response: reflect.TypeFor[body](), Status: 200}
	schema := map[string]any{
		"type":     "object",
		"required": []any{"name", "must", "labels"},
		"properties": map[string]any{
			"name":   map[string]any{"type": "string"},
			"port":   map[string]any{"type": "string"},
			"labels": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
			"must":   map[string]any{"type": "string"},
			"count":  map[string]any{"type": "integer"},
			"newer":  map[string]any{"type": "string"},
		},
	}
	doc := Document{"paths": map[string]any{"/v1/things/{name}": map[string]any{"put": map[string]any{
		"requestBody": map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": schema}}},
		"responses":   map[string]any{"200": map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": schema}}}},
	}}}}
	got := strings.Join(CheckRoutes(doc, []weftapi.Route{route, {Method: "GET", Path: "/v1/gone", Response: reflect.TypeFor[body](), Status: 200}}), "\n")
	for _, want := range []string{
		"PUT /v1/things/{name} request.port: Go has an integer, the schema \"string\"",
		"PUT /v1/things/{name} request.extra: not in the controller's schema",
		"PUT /v1/things/{name} request.must: required by the controller, not always sent",
		"PUT /v1/things/{name} request.newer: the controller takes it, the client cannot send it",
		"PUT /v1/things/{name} response.count: the controller may leave it out, but Go cannot tell absent from empty",
		"GET /v1/gone: the controller has no such route",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems:\n%s\nwant one: %s", got, want)
		}
	}
	limits := CheckLimits(Document{"a": map[string]any{"maxLength": 100.0}}, []Limit{{"/a/maxLength", 200}, {"/a/pattern", "^x$"}})
	if len(limits) != 2 {
		t.Errorf("CheckLimits: got %v, want both limits reported", limits)
	}
}

// What the OpenAPI document cannot state is pinned to the controller's source instead.
func TestContract_limitsTheDocumentCannotState(t *testing.T) {
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(acctest.RepoRoot(), rel))
		if err != nil {
			t.Fatalf("%s: %v (the provider's limits are checked against the controller's source)", rel, err)
		}
		return string(b)
	}
	messages, policy, policies, labels := read("protocol/src/messages.ts"), read("protocol/src/policy.ts"), read("controller/src/policy/policies.ts"), read("controller/src/identity/labels.ts")
	for _, c := range []struct{ file, text, want string }{
		{"protocol/src/messages.ts", messages, "regex(/" + validate.LabelKeyPattern + "/"},
		{"protocol/src/messages.ts", messages, "labelKey = z.string().min(1).max(63)"},
		{"protocol/src/messages.ts", messages, `spiffeId: "` + validate.LabelIdentity + `"`},
		{"protocol/src/messages.ts", messages, `namespace: "` + validate.LabelNamespace + `"`},
		{"protocol/src/messages.ts", messages, `serviceAccount: "` + validate.LabelServiceAccount + `"`},
		{"protocol/src/messages.ts", messages, `WORKLOAD_NAMESPACES_LABEL = "` + validate.LabelWorkloadNamespaces + `"`},
		{"protocol/src/policy.ts", policy, "POLICY_PORT_RANGE_LIMIT = 1024"},
		{"controller/src/policy/policies.ts", policies, "MAX_ENTRIES_PER_RULE_SOURCE = 4096"},
		{"controller/src/identity/labels.ts", labels, `list.some((ns) => !nodeName.safeParse(ns).success)`},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("%s no longer contains %q: check internal/validate against it", c.file, c.want)
		}
	}
	if validate.PortRangeMaxPorts != 1024 || validate.EntriesPerRuleSrcMax != 4096 || validate.LabelKeyMaxLength != 63 {
		t.Errorf("internal/validate: port range %d, entries %d, label key %d; want 1024, 4096, 63", validate.PortRangeMaxPorts, validate.EntriesPerRuleSrcMax, validate.LabelKeyMaxLength)
	}
}
