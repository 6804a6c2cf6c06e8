// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_to_workload: tc egress of a workload's host-side veth (traffic going into the workload).
 * L2: Ethernet header.
 *
 * A packet carrying WEFT_MARK_ENFORCED already passed policy at weft0 or the VXLAN device: the
 * bit is cleared (it never reaches the workload) and the packet passes without being counted a
 * second time. Anything else (host, other local workloads, routed traffic) is enforced here:
 * src = ipcache(saddr), dst = ipcache(daddr), policy, counters. Non-IPv4 passes untouched.
 */
#include "lib/common.h"
#include "lib/enforce.h"
#include "lib/mark.h"

SEC("tc")
int weft_to_workload(struct __sk_buff *skb)
{
	if (mark_is_enforced(skb)) {
		mark_clear_enforced(skb);
		return TC_ACT_OK;
	}
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	return enforce_ipv4(skb, ETH_HLEN, WEFT_SRC_FROM_IPCACHE) == WEFT_DROP_NONE ? TC_ACT_OK : TC_ACT_SHOT;
}

char _license[] SEC("license") = "Dual BSD/GPL";
