#!/usr/bin/env bash
# Generates the provider's documentation (terraform/docs/) with tfplugindocs, from the schema's
# descriptions, examples/ and templates/. The docs test (TestAccDocs_upToDate) runs it into a
# temporary directory and fails when the committed docs differ: after changing a description or
# an example, run it and commit terraform/docs/.
#
#   terraform/scripts/gen-docs.sh [out-dir]     (default: terraform/docs)
#
# Uses $TF_ACC_TERRAFORM_PATH (else <repo>/.tools/bin/terraform) and $TFPLUGINDOCS_PATH (else
# <repo>/.tools/bin/tfplugindocs), both installed by scripts/setup.sh; never a terraform on PATH
# and nothing from the network: the schema comes from this provider, built here, through
# `terraform providers schema -json` with a dev_overrides CLI configuration.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(dirname "$here")
out=${1:-$here/docs}
terraform=${TF_ACC_TERRAFORM_PATH:-$root/.tools/bin/terraform}
tfplugindocs=${TFPLUGINDOCS_PATH:-$root/.tools/bin/tfplugindocs}
for tool in "$terraform" "$tfplugindocs"; do
  [ -x "$tool" ] || { echo "gen-docs: $tool is missing; run scripts/setup.sh" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$here" && go build -o "$work/bin/terraform-provider-weft" .)
cat > "$work/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "weft/weft" = "$work/bin"
  }
  direct {}
}
disable_checkpoint = true
RC
mkdir "$work/schema" "$work/site"
printf 'terraform {\n  required_providers {\n    weft = { source = "weft/weft" }\n  }\n}\n' > "$work/schema/main.tf"
(cd "$work/schema" && TF_CLI_CONFIG_FILE="$work/terraformrc" CHECKPOINT_DISABLE=1 "$terraform" providers schema -json) |
  # tfplugindocs looks a schema up by the short name (or under hashicorp/): give it that key.
  sed 's|"registry.terraform.io/weft/weft":|"weft":|' > "$work/schema.json"
cp -r "$here/examples" "$here/templates" "$work/site/"
# tfplugindocs finds the Terraform binary on PATH only; it is given the schema, so it runs none.
(cd "$work/site" && PATH="$(dirname "$terraform"):$PATH" "$tfplugindocs" generate \
  --provider-name weft --rendered-provider-name Weft --providers-schema "$work/schema.json" >/dev/null)
rm -rf "$out"
cp -r "$work/site/docs" "$out"
