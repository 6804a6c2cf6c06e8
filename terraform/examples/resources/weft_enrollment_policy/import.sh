# An enrollment policy is imported by its name.
terraform import weft_enrollment_policy.aws_web aws-prod-web
