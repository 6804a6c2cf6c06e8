# Every service of the shop namespace, with its VIP and DNS name.
data "weft_services" "shop" {
  namespace = "shop"
}

output "shop_services" {
  value = { for s in data.weft_services.shop.services : s.id => s.dns_name }
}
