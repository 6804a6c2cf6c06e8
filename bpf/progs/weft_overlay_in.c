// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_overlay_in: tc ingress of the WireGuard interface weft0 (kernel WireGuard or wireguard-go's
 * TUN). An L3 device: the packet starts with the IP header, no Ethernet header.
 *
 * src identity = ipcache(saddr), dst identity = ipcache(daddr); policy; counters. On pass the
 * packet gets WEFT_MARK_ENFORCED so weft_to_workload does not check it again on its way into a
 * workload. Non-IPv4 passes untouched (IPv6 is still to come).
 */
#include "lib/common.h"
#include "lib/enforce.h"
#include "lib/mark.h"

SEC("tc")
int weft_overlay_in(struct __sk_buff *skb)
{
	__u8 first;

	/*
	 * The version nibble rather than skb->protocol: equivalent on an L3 device, and it also
	 * holds under BPF_PROG_RUN, which always parses the test data as an Ethernet frame.
	 */
	if (bpf_skb_load_bytes(skb, 0, &first, 1) < 0 || (first >> 4) != 4)
		return TC_ACT_OK;
	if (enforce_ipv4(skb, 0, WEFT_SRC_FROM_IPCACHE) != WEFT_DROP_NONE)
		return TC_ACT_SHOT;
	mark_set_enforced(skb);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
