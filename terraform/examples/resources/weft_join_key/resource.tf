# A reusable key for the web servers: their nodes get the SPIFFE identity
# spiffe://<trust-domain>/ns/shop/sa/web.
resource "weft_join_key" "web" {
  description = "shop web servers"
  reusable    = true
  ttl_seconds = 7 * 24 * 3600
  labels = {
    "weft:namespace"      = "shop"
    "weft:serviceaccount" = "web"
  }
}

# A one-time key that only works on a running AWS instance of one account with the tag env=prod,
# enrolling from one of its own addresses (the agent runs with --cloud aws).
resource "weft_join_key" "prod_db" {
  labels = { "weft:namespace" = "shop", "weft:serviceaccount" = "db" }
  instance_selector = {
    provider = "aws"
    account  = "111111111111"
    tags     = { env = "prod" }
  }
  recreate_if_invalid = true # a new key once this one is used or expired
}

# The gateway of an on-prem site: a key granting weft:gateway must name its site. On-prem hosts
# have no signed instance document, so their keys name the site instead of an instance_selector.
resource "weft_join_key" "dc1_gateway" {
  description = "gateway of the dc1 site"
  labels      = { "weft:gateway" = "true" }
  site        = "dc1"
}

output "web_join_key" {
  value     = weft_join_key.web.key
  sensitive = true
}
