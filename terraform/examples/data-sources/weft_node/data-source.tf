data "weft_node" "db" {
  name = "azure-db-1"
}

output "db_identity" {
  value = data.weft_node.db.identity
}
