# Running AWS instances tagged role=web that no node has enrolled on yet.
data "weft_inventory_instances" "web" {
  cloud = "aws"
  state = "running"
  tags  = { role = "web" }
}

output "web_instances_without_agent" {
  value = [for i in data.weft_inventory_instances.web.instances : i.id if i.bound_node == null]
}
