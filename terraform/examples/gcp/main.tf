# Ubuntu 24.04 VMs on GCP that join Weft with no key (GCE's Debian images do not run cloud-init;
# Ubuntu's do and read the `user-data` metadata key). The enrollment policy admits instances of
# this project labelled role=api. GCE's MTU is 1460, so the overlay runs at 1380.
# Not applied by the tests (no cloud here); the user data it uses is rendered and checked with
# `cloud-init schema` by terraform/internal/provider/module_acc_test.go.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    google = { source = "hashicorp/google" }
    weft   = { source = "weft/weft" }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

provider "weft" {} # WEFT_ENDPOINT, WEFT_CA_HASH, WEFT_ADMIN_TOKEN

variable "project" {
  type = string
}

variable "region" {
  type    = string
  default = "europe-west1"
}

variable "network" {
  type    = string
  default = "default"
}

variable "controller_url" {
  type = string
}

variable "ca_hash" {
  type = string
}

resource "weft_enrollment_policy" "api" {
  name = "gcp-api"
  selector = {
    provider = "gcp"
    account  = var.project
    network  = var.network
    tags     = { role = "api" }
  }
  labels = {
    "weft:namespace"      = "shop"
    "weft:serviceaccount" = "api"
  }
}

module "weft_agent" {
  source = "../../modules/agent-cloud-init"

  controller_url = var.controller_url
  ca_hash        = var.ca_hash
  cloud          = "gcp"
  site           = "gcp-${var.network}"
  extra_up_args  = ["--mtu", "1380"]
}

resource "google_compute_instance" "api" {
  count        = 2
  name         = "api-${count.index + 1}"
  machine_type = "e2-small"
  zone         = "${var.region}-b"
  labels       = { role = "api" }

  boot_disk {
    initialize_params {
      image = "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
    }
  }
  network_interface {
    network = var.network
    access_config {}
  }
  metadata = {
    user-data = module.weft_agent.user_data
  }
  depends_on = [weft_enrollment_policy.api]
}
