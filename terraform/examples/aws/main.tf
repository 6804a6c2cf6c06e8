# Debian 12 web servers on AWS that join Weft with no key: the agent presents the instance's
# identity, the controller's inventory lists the instance (an AWS account in its inventory config),
# and the enrollment policy below admits instances of this account and region tagged role=web.
# Not applied by the tests (no cloud here); the user data it uses is rendered and checked with
# `cloud-init schema` by terraform/internal/provider/module_acc_test.go.

terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws  = { source = "hashicorp/aws" }
    weft = { source = "weft/weft" }
  }
}

provider "aws" {
  region = var.region
}

provider "weft" {} # WEFT_ENDPOINT, WEFT_CA_HASH, WEFT_ADMIN_TOKEN

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "subnet_id" {
  type = string
}

variable "controller_url" {
  type        = string
  description = "The controller as the instances reach it, https://host:8080."
}

variable "ca_hash" {
  type = string
}

data "aws_caller_identity" "current" {}

data "aws_ami" "debian12" {
  most_recent = true
  owners      = ["136693071363"] # Debian
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
}

resource "weft_enrollment_policy" "web" {
  name = "aws-web"
  selector = {
    provider = "aws"
    account  = data.aws_caller_identity.current.account_id
    region   = var.region
    tags     = { role = "web" }
  }
  labels = {
    "weft:namespace"      = "shop"
    "weft:serviceaccount" = "web"
  }
}

module "weft_agent" {
  source = "../../modules/agent-cloud-init"

  controller_url = var.controller_url
  ca_hash        = var.ca_hash
  cloud          = "aws"
  site           = "aws-${var.region}"
}

resource "aws_security_group" "wireguard" {
  name_prefix = "weft-"
  vpc_id      = data.aws_subnet.this.vpc_id
  ingress {
    description = "WireGuard"
    from_port   = 51820
    to_port     = 51820
    protocol    = "udp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

data "aws_subnet" "this" {
  id = var.subnet_id
}

resource "aws_instance" "web" {
  count                  = 2
  ami                    = data.aws_ami.debian12.id
  instance_type          = "t3.small"
  subnet_id              = var.subnet_id
  vpc_security_group_ids = [aws_security_group.wireguard.id]
  user_data              = module.weft_agent.user_data
  metadata_options {
    http_tokens = "required" # IMDSv2; the agent uses it
  }
  tags = {
    Name = "web-${count.index + 1}"
    role = "web"
  }
  depends_on = [weft_enrollment_policy.web]
}
