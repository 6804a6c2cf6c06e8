# The YAML that `weft policy apply -f payments.yaml` takes:
#
#   name: payments
#   rules:
#     - action: allow
#       from: [{ identity: spiffe://weft.internal/ns/web/sa/frontend }]
#       to: [{ namespace: payments, serviceAccount: api }]
#       ports: [{ protocol: tcp, port: 8443 }]
#     - action: allow
#       from: [{ labels: { tier: app } }]
#       to: [{ labels: { tier: data } }]
#       ports: [{ protocol: tcp, port: 5432 }, { protocol: udp, port: 9000, endPort: 9010 }]
#     - action: deny
#       from: [{ cidr: 0.0.0.0/0 }]
#       to: [{ namespace: payments }]
resource "weft_policy" "payments" {
  name        = "payments"
  description = "who may reach the payments services"

  rule {
    action = "allow"
    from {
      identity = "spiffe://weft.internal/ns/web/sa/frontend"
    }
    to {
      namespace       = "payments"
      service_account = "api"
    }
    port {
      protocol = "tcp"
      port     = 8443
    }
  }

  rule {
    action = "allow"
    from {
      labels = { tier = "app" }
    }
    to {
      labels = { tier = "data" }
    }
    port {
      protocol = "tcp"
      port     = 5432
    }
    port {
      protocol = "udp"
      port     = 9000
      end_port = 9010
    }
  }

  rule {
    action = "deny"
    from {
      cidr = "0.0.0.0/0"
    }
    to {
      namespace = "payments"
    }
  }
}
