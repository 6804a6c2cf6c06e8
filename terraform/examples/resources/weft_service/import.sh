# A service is imported by <namespace>/<name>.
terraform import weft_service.api shop/api
