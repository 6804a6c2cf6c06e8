# Instances of this AWS account and VPC tagged role=web join with no key at all
# (`weft up --cloud aws`), with the identity spiffe://<trust-domain>/ns/shop/sa/web, in the site
# aws-eu (else the site the controller's inventory config gives their VPC).
resource "weft_enrollment_policy" "aws_web" {
  name        = "aws-prod-web"
  description = "prod web servers in eu-west-1"
  selector = {
    provider = "aws"
    account  = "111111111111"
    region   = "eu-west-1"
    network  = "vpc-0abc1234"
    tags     = { env = "prod", role = "web" }
  }
  site = "aws-eu"
  labels = {
    "weft:namespace"      = "shop"
    "weft:serviceaccount" = "web"
  }
}
