# A node is imported by its name or its id.
terraform import weft_node.web_1 aws-web-1
