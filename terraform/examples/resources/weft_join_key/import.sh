# A join key is imported by its id (`weft keys list`); its secret is not: `key` stays null.
terraform import weft_join_key.web 0123456789ab
