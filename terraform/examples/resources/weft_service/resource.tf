# The shop's api on one VIP and the name api.shop.svc.<zone>: port 80 reaches the backends'
# 8080, served by every workload and node running as shop/api in any site, the caller's own
# site first; agents check them over HTTP.
resource "weft_service" "api" {
  namespace   = "shop"
  name        = "api"
  description = "the shop's api tier"
  ports       = [{ name = "http", port = 80, target_port = 8080 }]
  backends    = [{ namespace = "shop", service_account = "api" }]
  health_check = {
    protocol = "http"
    path     = "/healthz"
  }
}

# A canary: 10% of new connections go to the nodes labelled track=canary in the aws-eu site.
resource "weft_service" "checkout" {
  namespace = "shop"
  name      = "checkout"
  ports     = [{ port = 443 }]
  algorithm = "weighted"
  subsets = [
    { name = "stable", weight = 90, backends = [{ namespace = "shop", service_account = "checkout" }] },
    { name = "canary", weight = 10, backends = [{ labels = { track = "canary" }, sites = ["aws-eu"] }] },
  ]
  rate_limit = { connections_per_second = 200 }
}

output "api_address" {
  value = "${weft_service.api.dns_name} (${weft_service.api.vip})"
}
