# Take the node an agent enrolled as "aws-web-1" under management: destroying this resource
# (or the configuration it is part of) deletes the node from the overlay at once, instead of
# waiting for the inventory to see its instance terminated.
resource "weft_node" "web_1" {
  name = "aws-web-1"
}

output "web_1_overlay_address" {
  value = weft_node.web_1.overlay_address
}
