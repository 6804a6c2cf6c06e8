package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/weft/weft/terraform/internal/acctest"
	"github.com/weft/weft/terraform/internal/weftapi"
)

const serviceAddr = "weft_service.api"

func serviceConfig(body string) string {
	return `
resource "weft_service" "api" {
  namespace   = "shop"
  name        = "tf-api"
  description = "the shop's api tier"
` + body + `
}
`
}

// controllerService checks the document the controller stores for shop/tf-api.
func controllerService(t *testing.T, ctl *acctest.Controller, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := ctl.Client().GetService(ctx(), "shop", "tf-api")
		if err != nil {
			return err
		}
		return sameJSON(t, "service shop/tf-api on the controller", got.Service, want)
	}
}

func TestAccService_lifecycle(t *testing.T) {
	ctl := acctest.Shared(t)
	cfg := func(body string) string { return ctl.ProviderConfig() + body }
	v1 := serviceConfig(`  ports    = [{ port = 80, target_port = 8080 }]
  backends = [{ namespace = "shop", service_account = "api" }]`)
	v2 := serviceConfig(`  ports     = [{ name = "http", port = 80, target_port = 8080 }, { port = 9090, protocol = "udp" }]
  algorithm = "weighted"
  subsets = [
    { name = "stable", weight = 90, backends = [{ namespace = "shop", service_account = "api" }] },
    { name = "canary", weight = 10, backends = [{ labels = { track = "canary" }, sites = ["tf-lab"] }] },
  ]
  locality     = "cloud"
  health_check = { protocol = "http", path = "/healthz", interval_ms = 2000, timeout_ms = 500 }
  rate_limit   = { connections_per_second = 100, burst = 200 }`)
	v2JSON := `{"version":1,"name":"tf-api","namespace":"shop","description":"the shop's api tier",
		"ports":[{"name":"http","port":80,"protocol":"tcp","targetPort":8080},{"port":9090,"protocol":"udp"}],"algorithm":"weighted",
		"subsets":[{"name":"stable","weight":90,"backends":[{"namespace":"shop","serviceAccount":"api"}]},{"name":"canary","weight":10,"backends":[{"labels":{"track":"canary"},"sites":["tf-lab"]}]}],
		"locality":"cloud","healthCheck":{"protocol":"http","path":"/healthz","intervalMs":2000,"timeoutMs":500,"healthyThreshold":2,"unhealthyThreshold":2},
		"rateLimit":{"connectionsPerSecond":100,"burst":200},"vip":"%s"}`
	var vip string
	drifted := writeFile(t, "drifted.yaml", `namespace: shop
name: tf-api
ports: [{ port: 443 }]
backends: [{ namespace: shop }]
`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{ // create: a VIP (not asked for: none in the stored document) and a DNS name are allocated; the plan after it is empty
				Config:           cfg(v1),
				ConfigPlanChecks: expectAction(serviceAddr, plancheck.ResourceActionCreate),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(serviceAddr, "id", "shop/tf-api"),
					resource.TestMatchResourceAttr(serviceAddr, "vip", regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+$`)),
					resource.TestMatchResourceAttr(serviceAddr, "dns_name", regexp.MustCompile(`^tf-api\.shop\.svc\.`)),
					resource.TestCheckResourceAttr(serviceAddr, "algorithm", "round-robin"),
					resource.TestCheckResourceAttr(serviceAddr, "locality", "site"),
					resource.TestCheckResourceAttr(serviceAddr, "ports.0.protocol", "tcp"),
					keyAttrOf(serviceAddr, "vip", &vip),
					func(s *terraform.State) error {
						return controllerService(t, ctl, `{"version":1,"name":"tf-api","namespace":"shop","description":"the shop's api tier",
							"ports":[{"port":80,"protocol":"tcp","targetPort":8080}],"algorithm":"round-robin","backends":[{"namespace":"shop","serviceAccount":"api"}],
							"locality":"site"}`)(s)
					},
				),
			},
			{ // update in place: weighted subsets, another port, a health check and a rate limit; the VIP stays
				Config:           cfg(v2),
				ConfigPlanChecks: expectAction(serviceAddr, plancheck.ResourceActionUpdate),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrPtr(serviceAddr, "vip", &vip),
					func(s *terraform.State) error { return controllerService(t, ctl, fmt.Sprintf(v2JSON, vip))(s) },
				),
			},
			{ // the data source lists it
				Config: cfg(v2) + `
data "weft_services" "shop" {
  namespace  = "shop"
  depends_on = [weft_service.api]
}
data "weft_services" "none" {
  namespace  = "nothing-here"
  depends_on = [weft_service.api]
}
`,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.weft_services.shop", "services.#", "1"),
					resource.TestCheckResourceAttr("data.weft_services.shop", "services.0.id", "shop/tf-api"),
					resource.TestCheckResourceAttrPtr("data.weft_services.shop", "services.0.vip", &vip),
					resource.TestCheckResourceAttr("data.weft_services.shop", "services.0.ports.1.protocol", "udp"),
					resource.TestCheckResourceAttr("data.weft_services.none", "services.#", "0"),
				),
			},
			{ // import by <namespace>/<name>
				Config:            cfg(v2),
				ResourceName:      serviceAddr,
				ImportState:       true,
				ImportStateId:     "shop/tf-api",
				ImportStateVerify: true,
			},
			{ // drift: replaced with the CLI, shown as an update and put back
				PreConfig:        func() { ctl.CLI(t, "service", "apply", "-f", drifted) },
				Config:           cfg(v2),
				ConfigPlanChecks: expectAction(serviceAddr, plancheck.ResourceActionUpdate),
				Check:            func(s *terraform.State) error { return controllerService(t, ctl, fmt.Sprintf(v2JSON, vip))(s) },
			},
			{ // drift: deleted with the CLI, shown as a create
				PreConfig:        func() { ctl.CLI(t, "service", "delete", "shop/tf-api") },
				Config:           cfg(v2),
				ConfigPlanChecks: expectAction(serviceAddr, plancheck.ResourceActionCreate),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if _, err := ctl.Client().GetService(ctx(), "shop", "tf-api"); !weftapi.IsNotFound(err) {
				return fmt.Errorf("after destroy, GET /v1/services/shop/tf-api: got %v, want 404", err)
			}
			return nil
		},
	})
}

func TestAccService_planTimeValidation(t *testing.T) {
	ctl := acctest.Shared(t)
	const ports = `ports = [{ port = 80 }]
  `
	const backends = `backends = [{ namespace = "shop" }]
  `
	cases := []struct{ name, body, want string }{
		{"bad port", `ports = [{ port = 70000 }]
  ` + backends, `ports\[0\]\.port value must be between 1 and 65535, got: 70000`},
		{"no ports", `ports = []
  ` + backends, `ports list must contain at least 1 elements`},
		{"bad protocol", `ports = [{ port = 80, protocol = "sctp" }]
  ` + backends, `ports\[0\]\.protocol value must be one of`},
		{"duplicate port", `ports = [{ port = 80 }, { port = 80 }]
  ` + backends, `ports\[1\]\.port: duplicate port tcp/80 \(also ports\[0\]\)`},
		{"neither backends nor subsets", ports, `backends: give exactly one of backends \(all alike\) or subsets`},
		{"two kinds in a selector", ports + `backends = [{ namespace = "shop", labels = { a = "b" } }]`, `backends\[0\]: must name exactly one of identity, namespace \(with service_account\), labels; got namespace and labels`},
		{"service account without namespace", ports + `backends = [{ service_account = "api", labels = { a = "b" } }]`, `backends\[0\]\.service_account: needs namespace`},
		{"weighted without subsets", ports + backends + `algorithm = "weighted"`, `subsets: algorithm weighted needs subsets with weights`},
		{"subsets without weighted", ports + `subsets = [{ name = "a", weight = 1, backends = [{ namespace = "shop" }] }]`, `subsets: subsets carry weights: use algorithm weighted`},
		{"all weights zero", ports + `algorithm = "weighted"
  subsets = [{ name = "a", weight = 0, backends = [{ namespace = "shop" }] }]`, `subsets: at least one subset needs a weight above 0`},
		{"path on a tcp check", ports + backends + `health_check = { protocol = "tcp", path = "/x" }`, `health_check\.path: only an http check has a path`},
		{"timeout above interval", ports + backends + `health_check = { protocol = "tcp", interval_ms = 200, timeout_ms = 300 }`, `health_check\.timeout_ms: must not exceed interval_ms \(200\)`},
		{"bad namespace", `namespace = "Shop"`, `namespace: must be a DNS label`},
		{"bad identity", ports + `backends = [{ identity = "spiffe://weft.internal/web" }]`, `backends\[0\]\.identity: must be spiffe://`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := `namespace = "shop"
  `
			if tc.name == "bad namespace" {
				ns = ""
				tc.body += `
  name = "x"
  ` + ports + backends
			} else {
				tc.body = `name = "x"
  ` + tc.body
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: providers,
				Steps: []resource.TestStep{{
					Config:      ctl.ProviderConfig() + "resource \"weft_service\" \"bad\" {\n  " + ns + tc.body + "\n}\n",
					PlanOnly:    true,
					ExpectError: wrapped(tc.want),
				}},
			})
		})
	}
}
