# Every identity of the shop namespace, by SPIFFE ID.
data "weft_identities" "shop" {
  namespace = "shop"
}

output "shop_identities" {
  value = { for i in data.weft_identities.shop.identities : i.spiffe_id => i.number }
}
