# A policy is imported by its name.
terraform import weft_policy.payments payments
