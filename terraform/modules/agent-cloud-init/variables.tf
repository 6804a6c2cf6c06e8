variable "controller_url" {
  type        = string
  description = "The controller's API as the VM reaches it: https://host:port (one of the `controller_urls` of a join key, or the address in front of the controller)."
  validation {
    condition     = can(regex("^https://[^/\\s]+$", var.controller_url))
    error_message = "controller_url must be https://host:port with no path."
  }
}

variable "ca_hash" {
  type        = string
  description = "Pin of the controller's CA: sha256: and 64 hex digits (<state-dir>/tls/ca.hash, or a join key's ca_hash). The VM checks the CA it downloads against it before trusting anything the controller serves."
  validation {
    condition     = can(regex("^sha256:[0-9a-fA-F]{64}$", var.ca_hash))
    error_message = "ca_hash must be sha256: followed by 64 hex digits."
  }
}

variable "cloud" {
  type        = string
  default     = null
  description = "aws, azure or gcp: the agent presents the VM's instance identity (`weft up --cloud`). With no join key this is how the VM joins (keyless, through an enrollment policy); with a key, a key's instance_selector needs it."
  validation {
    condition     = var.cloud == null || contains(["aws", "azure", "gcp"], coalesce(var.cloud, "-"))
    error_message = "cloud must be aws, azure or gcp."
  }
}

variable "create_join_key" {
  type        = bool
  default     = false
  description = "Create a join key for the VMs (a weft_join_key in this module) and put it in the user data. Default false: join keyless (set cloud) or with join_key."
}

variable "join_key" {
  type        = string
  default     = null
  sensitive   = true
  description = "An existing join key (weft_join_key.<name>.key) to put in the user data, instead of creating one."
}

variable "join_key_labels" {
  type        = map(string)
  default     = {}
  description = "With create_join_key: the labels the key grants (weft:namespace, weft:serviceaccount, weft:gateway, …)."
}

variable "join_key_reusable" {
  type        = bool
  default     = false
  description = "With create_join_key: let many VMs enroll with the one key (for a group of VMs sharing this user data). Default: one-time."
}

variable "join_key_ttl_seconds" {
  type        = number
  default     = 86400
  description = "With create_join_key: the key's lifetime in seconds (60 to a year); the VMs must boot and enroll within it."
}

variable "join_key_instance_selector" {
  type = object({
    provider = optional(string)
    account  = optional(string)
    region   = optional(string)
    network  = optional(string)
    tags     = optional(map(string))
  })
  default     = null
  description = "With create_join_key: the key works only for inventory instances matching this (set cloud so the agent presents its instance identity)."
}

variable "site" {
  type        = string
  default     = null
  description = "The node's site (a DNS label): the network domain whose hosts reach each other on private addresses, e.g. aws-vpc-1. Default: weft up's."
  validation {
    condition     = var.site == null || can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", coalesce(var.site, "-")))
    error_message = "site must be a DNS label: lowercase letters, digits and '-'."
  }
}

variable "node_name" {
  type        = string
  default     = null
  description = "The node's name (a DNS label). Default: the VM's host name, so one user data can serve many VMs."
  validation {
    condition     = var.node_name == null || can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", coalesce(var.node_name, "-")))
    error_message = "node_name must be a DNS label: lowercase letters, digits and '-'."
  }
}

variable "package_version" {
  type        = string
  default     = null
  description = "The weft package version to install. Default: the newest the controller serves."
}

variable "extra_up_args" {
  type        = list(string)
  default     = []
  description = "More arguments for `weft up` (e.g. [\"--mtu\", \"1380\"] on GCP, [\"--public-endpoint\", \"203.0.113.7:51820\"])."
}
