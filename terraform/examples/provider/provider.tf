terraform {
  required_providers {
    weft = {
      source = "weft/weft"
    }
  }
}

# Every argument can come from the environment instead:
# WEFT_ENDPOINT, WEFT_CA_HASH and WEFT_ADMIN_TOKEN (the variable the `weft` admin commands read).
provider "weft" {
  endpoint = "https://ctl.example.com:8080"
  # <state-dir>/tls/ca.hash on the controller, or the pin `weft keys create` prints
  ca_hash = "sha256:9f2c0d5e8a7b6c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"
  token   = var.weft_admin_token
}

variable "weft_admin_token" {
  type      = string
  sensitive = true
}
