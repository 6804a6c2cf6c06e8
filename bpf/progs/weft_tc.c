// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_tc: tc (clsact) entry points: identity-aware policy and per identity-pair counters.
 *
 * source address -> identity (ipcache), destination address -> identity, then
 * (src id, dst id, proto, dport) -> verdict (policy). Non-IPv4 traffic passes untouched for now.
 *
 *   weft_tc_l2: devices with an Ethernet header (workload veths); tested with BPF_PROG_RUN.
 *   weft_tc_l3: L3 devices without one (weft0 on wireguard-go's TUN, kernel WireGuard).
 */
#include "lib/common.h"
#include "lib/verdict.h"
#include "lib/ipcache.h"
#include "lib/policy.h"
#include "lib/counters.h"

static __always_inline int handle_ipv4(struct __sk_buff *skb, __u32 l3_off)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + l3_off;
	__u32 src_id, dst_id, reason;
	__u16 dport = 0;
	__u32 ihl;

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_SHOT; /* malformed: no counters, no identities to blame */
	ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < sizeof(*ip))
		return TC_ACT_SHOT;

	src_id = ipcache_lookup4(ip->saddr);
	dst_id = ipcache_lookup4(ip->daddr);

	/* Ports only from the first fragment; later fragments match "any port" rules only. */
	if (!(ip->frag_off & bpf_htons(0x1fff)) &&
	    (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP)) {
		/* tcp and udp both start with source then destination port. */
		__u16 *ports = (void *)ip + ihl;

		if ((void *)(ports + 2) > data_end) {
			counters_account(src_id, dst_id, skb->len, 1);
			return TC_ACT_SHOT;
		}
		dport = ports[1];
	}

	reason = policy_check(src_id, dst_id, ip->protocol, dport);
	counters_account(src_id, dst_id, skb->len, reason != WEFT_DROP_NONE);
	return reason == WEFT_DROP_NONE ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("tc")
int weft_tc_l2(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	return handle_ipv4(skb, sizeof(struct ethhdr));
}

SEC("tc")
int weft_tc_l3(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	return handle_ipv4(skb, 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
