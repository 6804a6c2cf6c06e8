/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ipv4: reads the IPv4 header and the L4 destination port with bpf_skb_load_bytes, which copies
 * from the paged part of a non-linear skb too: ports past the linear data are still seen instead
 * of the packet being taken for malformed. Owns no map.
 */
#ifndef WEFT_IPV4_H
#define WEFT_IPV4_H

#include "common.h"
#include "verdict.h"

struct weft_ipv4 {
	__u32 saddr; /* network byte order */
	__u32 daddr; /* network byte order */
	__u16 dport; /* network byte order; 0 for other protocols and non-first fragments */
	__u8 proto;
	__u8 have_addrs; /* saddr/daddr are valid (the IPv4 header could be read) */
};

/* Parses the IPv4 packet at l3_off. Returns WEFT_DROP_NONE or WEFT_DROP_MALFORMED. */
static __always_inline __u32 ipv4_parse(struct __sk_buff *skb, __u32 l3_off, struct weft_ipv4 *out)
{
	struct iphdr ip;
	__u32 ihl;

	out->have_addrs = 0;
	out->dport = 0;
	if (bpf_skb_load_bytes(skb, l3_off, &ip, sizeof(ip)) < 0)
		return WEFT_DROP_MALFORMED;
	ihl = ip.ihl * 4;
	if (ip.version != 4 || ihl < sizeof(ip))
		return WEFT_DROP_MALFORMED;
	out->saddr = ip.saddr;
	out->daddr = ip.daddr;
	out->proto = ip.protocol;
	out->have_addrs = 1;

	/* Ports only from the first fragment; later fragments match "any port" rules only. */
	if (!(ip.frag_off & bpf_htons(0x1fff)) && (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP)) {
		/* tcp and udp both start with source then destination port. */
		if (bpf_skb_load_bytes(skb, l3_off + ihl + 2, &out->dport, sizeof(out->dport)) < 0)
			return WEFT_DROP_MALFORMED;
	}
	return WEFT_DROP_NONE;
}

#endif /* WEFT_IPV4_H */
