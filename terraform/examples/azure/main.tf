# A Debian 12 database VM on Azure that joins Weft with a one-time join key this configuration
# creates (inside the agent-cloud-init module), valid only for a VM of this subscription that the
# controller's inventory lists (the agent presents its identity with --cloud azure).
# Not applied by the tests (no cloud here); the user data it uses is rendered and checked with
# `cloud-init schema` by terraform/internal/provider/module_acc_test.go.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    azurerm = { source = "hashicorp/azurerm" }
    weft    = { source = "weft/weft" }
  }
}

provider "azurerm" {
  features {}
}

provider "weft" {} # WEFT_ENDPOINT, WEFT_CA_HASH, WEFT_ADMIN_TOKEN

variable "resource_group_name" {
  type = string
}

variable "location" {
  type    = string
  default = "westeurope"
}

variable "subnet_id" {
  type = string
}

variable "admin_ssh_public_key" {
  type = string
}

variable "controller_url" {
  type = string
}

variable "ca_hash" {
  type = string
}

data "azurerm_client_config" "current" {}

module "weft_agent" {
  source = "../../modules/agent-cloud-init"

  controller_url  = var.controller_url
  ca_hash         = var.ca_hash
  cloud           = "azure"
  site            = "azure-${var.location}"
  create_join_key = true
  join_key_labels = {
    "weft:namespace"      = "shop"
    "weft:serviceaccount" = "db"
  }
  join_key_instance_selector = {
    provider = "azure"
    account  = data.azurerm_client_config.current.subscription_id
  }
}

resource "azurerm_network_interface" "db" {
  name                = "weft-db-1"
  location            = var.location
  resource_group_name = var.resource_group_name
  ip_configuration {
    name                          = "internal"
    subnet_id                     = var.subnet_id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_linux_virtual_machine" "db" {
  name                  = "db-1"
  location              = var.location
  resource_group_name   = var.resource_group_name
  size                  = "Standard_B2s"
  admin_username        = "debian"
  network_interface_ids = [azurerm_network_interface.db.id]
  custom_data           = module.weft_agent.user_data_base64

  admin_ssh_key {
    username   = "debian"
    public_key = var.admin_ssh_public_key
  }
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Standard_LRS"
  }
  source_image_reference {
    publisher = "Debian"
    offer     = "debian-12"
    sku       = "12-gen2"
    version   = "latest"
  }
  tags = { role = "db" }
}
