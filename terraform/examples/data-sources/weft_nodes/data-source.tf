# The gateways of every site, and every node of the AWS site.
data "weft_nodes" "gateways" {
  labels = { "weft:gateway" = "true" }
}

data "weft_nodes" "aws" {
  site = "aws-vpc-1"
}

output "aws_overlay_addresses" {
  value = [for n in data.weft_nodes.aws.nodes : n.overlay_address]
}
