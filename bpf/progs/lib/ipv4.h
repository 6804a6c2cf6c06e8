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
	/* The flow's ports for conntrack (network order): tcp/udp ports; the id for ICMP echo; else 0. */
	__u16 ct_sport;
	__u16 ct_dport;
	__u8 icmp_echo; /* WEFT_ICMP_IS_REQUEST or WEFT_ICMP_IS_REPLY for ICMP echo, else 0 */
	__u8 tcp_flags; /* TCP: the flags byte (WEFT_TCP_SYN, WEFT_TCP_ACK, ...) of the first fragment; else 0 */
	__u8 pad0[2];
};

#define WEFT_TCP_SYN 0x02
#define WEFT_TCP_ACK 0x10

/* A TCP packet that opens a connection (SYN without ACK): a new flow on its tuple. */
static __always_inline int ipv4_is_tcp_open(const struct weft_ipv4 *p)
{
	return p->proto == IPPROTO_TCP && (p->tcp_flags & (WEFT_TCP_SYN | WEFT_TCP_ACK)) == WEFT_TCP_SYN;
}

#define WEFT_ICMP_IS_REQUEST 1
#define WEFT_ICMP_IS_REPLY 2

#define WEFT_ICMP_ECHOREPLY 0
#define WEFT_ICMP_ECHO 8

/* Parses the IPv4 packet at l3_off. Returns WEFT_DROP_NONE or WEFT_DROP_MALFORMED. */
static __always_inline __u32 ipv4_parse(struct __sk_buff *skb, __u32 l3_off, struct weft_ipv4 *out)
{
	struct iphdr ip;
	__u32 ihl;

	out->have_addrs = 0;
	out->dport = 0;
	out->ct_sport = 0;
	out->ct_dport = 0;
	out->icmp_echo = 0;
	out->tcp_flags = 0;
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
		__u16 ports[2];

		if (bpf_skb_load_bytes(skb, l3_off + ihl, ports, sizeof(ports)) < 0)
			return WEFT_DROP_MALFORMED;
		out->dport = ports[1];
		out->ct_sport = ports[0];
		out->ct_dport = ports[1];
		/* The flags byte: offset 13 of the TCP header. A header too short to hold it reads as no flags. */
		if (ip.protocol == IPPROTO_TCP && bpf_skb_load_bytes(skb, l3_off + ihl + 13, &out->tcp_flags, 1) < 0)
			out->tcp_flags = 0;
	} else if (!(ip.frag_off & bpf_htons(0x1fff)) && ip.protocol == IPPROTO_ICMP) {
		/* type, code, checksum, then the echo id: a request and its reply share it. */
		__u8 icmp[6];

		if (bpf_skb_load_bytes(skb, l3_off + ihl, icmp, sizeof(icmp)) == 0 && (icmp[0] == WEFT_ICMP_ECHO || icmp[0] == WEFT_ICMP_ECHOREPLY)) {
			__u16 id = (__u16)icmp[4] | ((__u16)icmp[5] << 8);

			out->ct_sport = id;
			out->ct_dport = id;
			out->icmp_echo = icmp[0] == WEFT_ICMP_ECHO ? WEFT_ICMP_IS_REQUEST : WEFT_ICMP_IS_REPLY;
		}
	}
	return WEFT_DROP_NONE;
}

#endif /* WEFT_IPV4_H */
