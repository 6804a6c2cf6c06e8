output "user_data" {
  description = "The cloud-init user data (#cloud-config): aws_instance.user_data, google_compute_instance metadata[\"user-data\"]. Sensitive: it may hold a join key."
  value       = local.user_data
  sensitive   = true

  precondition {
    condition     = local.has_key || var.cloud != null
    error_message = "agent-cloud-init: the VM has no way to join: set cloud (keyless, through an enrollment policy), create_join_key = true, or join_key."
  }
}

output "user_data_base64" {
  description = "The same, base64-encoded: azurerm_linux_virtual_machine.custom_data."
  value       = base64encode(local.user_data)
  sensitive   = true
}

output "bootstrap_script" {
  description = "The script the user data runs (/usr/local/sbin/weft-bootstrap), for review."
  value       = local.bootstrap
}

output "join_key_id" {
  description = "The id of the join key this module created (null without create_join_key)."
  value       = var.create_join_key ? weft_join_key.this[0].id : null
}
