# Renders cloud-init user data that installs the Weft agent from the controller and joins the VM
# to the overlay: keyless by the VM's instance identity (`cloud`), or with a join key (created here
# or given). Written against the installer of issue 13: the controller serves GET /ca.pem,
# GET /install.sh and the package over its pinned-CA HTTPS, and install.sh runs
# `weft up --controller <url> --ca-hash <pin> (--join-key-file <file> | --cloud aws|azure|gcp)`.

resource "weft_join_key" "this" {
  count = var.create_join_key ? 1 : 0

  description       = "agent-cloud-init"
  reusable          = var.join_key_reusable
  ttl_seconds       = var.join_key_ttl_seconds
  labels            = var.join_key_labels
  instance_selector = var.join_key_instance_selector
}

locals {
  join_key = var.create_join_key ? weft_join_key.this[0].key : var.join_key
  # Whether a key is given is not secret, the key is.
  has_key = var.create_join_key || nonsensitive(var.join_key != null)

  key_file = "/etc/weft/bootstrap/join-key"
  up_args = concat(
    local.has_key ? ["--join-key-file", local.key_file] : [],
    var.cloud != null ? ["--cloud", var.cloud] : [],
    var.site != null ? ["--site", var.site] : [],
    var.node_name != null ? ["--name", var.node_name] : [],
    var.package_version != null ? ["--version", var.package_version] : [],
    var.extra_up_args,
  )

  bootstrap = templatefile("${path.module}/bootstrap.sh.tftpl", {
    controller_url = trimsuffix(var.controller_url, "/")
    ca_hex         = lower(trimprefix(var.ca_hash, "sha256:"))
    key_file       = local.key_file
    has_key        = local.has_key
    # Each argument single-quoted for sh.
    args = join(" ", [for a in local.up_args : "'${replace(a, "'", "'\\''")}'"])
  })

  cloud_config = {
    package_update = true
    packages       = ["ca-certificates", "curl", "openssl"]
    write_files = concat(
      [{
        path        = "/usr/local/sbin/weft-bootstrap"
        owner       = "root:root"
        permissions = "0755"
        content     = local.bootstrap
      }],
      local.has_key ? [{
        path        = local.key_file
        owner       = "root:root"
        permissions = "0600"
        content     = "${local.join_key}\n"
      }] : [],
    )
    runcmd = [["sh", "/usr/local/sbin/weft-bootstrap"]]
  }

  user_data = "#cloud-config\n${yamlencode(local.cloud_config)}"
}
