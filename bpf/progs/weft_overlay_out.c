// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_overlay_out: tc egress of the WireGuard interface weft0 (L3, no Ethernet header). Never
 * drops: it notes every IPv4 flow this node sends into the overlay (its own and its workloads'
 * routed traffic) in conntrack, so weft_overlay_in lets the replies through whatever the
 * sender's own policy says about their source.
 */
#include "lib/common.h"
#include "lib/conntrack.h"

SEC("tc")
int weft_overlay_out(struct __sk_buff *skb)
{
	struct weft_ipv4 p;
	__u8 first;

	if (bpf_skb_load_bytes(skb, 0, &first, 1) < 0 || (first >> 4) != 4)
		return TC_ACT_OK;
	ipv4_parse(skb, 0, &p);
	if (p.have_addrs)
		ct_note_sent(&p);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
