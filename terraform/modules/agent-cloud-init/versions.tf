terraform {
  required_version = ">= 1.5.0"
  required_providers {
    weft = {
      source = "weft/weft"
    }
  }
}
