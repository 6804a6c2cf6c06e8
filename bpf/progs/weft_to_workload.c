// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_to_workload: tc egress of a workload's host-side veth (traffic going into the workload).
 * L2: Ethernet header.
 *
 * A packet carrying WEFT_MARK_ENFORCED already passed policy at weft0 or the VXLAN device: the
 * bit is cleared (it never reaches the workload) and the packet passes without being counted a
 * second time. Anything else (host, other local workloads, routed traffic) is enforced here:
 * src = ipcache(saddr), dst = ipcache(daddr), policy, counters. Non-IPv4 passes untouched.
 *
 * Services (tc fallback, lb_nat.h): a backend's reply to a flow weft_from_workload sent to it
 * through a VIP is rewritten, after the policy step, to come from that VIP:port again.
 */
#include "lib/common.h"
#include "lib/enforce.h"
#include "lib/lb_nat.h"
#include "lib/mark.h"

SEC("tc")
int weft_to_workload(struct __sk_buff *skb)
{
	if (mark_is_enforced(skb)) {
		mark_clear_enforced(skb);
	} else {
		if (skb->protocol != bpf_htons(ETH_P_IP))
			return TC_ACT_OK;
		if (enforce_ipv4(skb, ETH_HLEN, WEFT_SRC_FROM_IPCACHE) != WEFT_DROP_NONE)
			return TC_ACT_SHOT;
	}
	if (skb->protocol == bpf_htons(ETH_P_IP))
		lb_tc_rev(skb, ETH_HLEN);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
