# Weft as code on the demo's controller: a join key for the on-prem hosts, an enrollment policy
# that lets the AWS hosts join with no key, and a policy that lets the shop's web tier reach its
# api tier. The README ("Terraform") shows how to point it at `npm run demo`'s controller; the
# provider reads the controller from WEFT_ENDPOINT, WEFT_CA_HASH and WEFT_ADMIN_TOKEN.

terraform {
  required_providers {
    weft = {
      source = "weft/weft"
    }
  }
}

provider "weft" {}

resource "weft_join_key" "onprem" {
  description = "on-prem hosts of the shop"
  reusable    = true
  ttl_seconds = 3600
  site        = "onprem" # the demo's on-prem site: the key vouches for it (on-prem hosts have no signed instance document)
  labels = {
    "weft:namespace"      = "shop"
    "weft:serviceaccount" = "batch"
  }
}

resource "weft_enrollment_policy" "aws_web" {
  name        = "tf-aws-web"
  description = "AWS hosts tagged role=web join keyless"
  selector = {
    provider = "aws"
    tags     = { role = "web" }
  }
  labels = {
    "weft:namespace"      = "shop"
    "weft:serviceaccount" = "web"
  }
}

resource "weft_policy" "shop_web_to_api" {
  name        = "tf-shop-web-to-api"
  description = "the shop's web tier may call its api tier on tcp/7000"

  rule {
    action = "allow"
    from {
      namespace       = "shop"
      service_account = "web"
    }
    to {
      namespace       = "shop"
      service_account = "api"
    }
    port {
      protocol = "tcp"
      port     = 7000
    }
  }
}

data "weft_nodes" "all" {}

output "join_key_id" {
  value = weft_join_key.onprem.id
}

output "join_key" {
  value     = weft_join_key.onprem.key
  sensitive = true
}

output "nodes" {
  value = data.weft_nodes.all.names
}
