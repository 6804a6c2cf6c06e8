// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_vxlan_in: tc ingress of the VXLAN collect_md device. L2: the decapsulated inner frame.
 *
 * The outer source (the remote underlay address of the tunnel key) must be a same-site peer in
 * weft_tunnel_peers, else the packet is dropped with WEFT_DROP_TUNNEL_SOURCE and counted for
 * (unknown, dst): the VNI of an unknown sender is not trusted even for counting. The inner source
 * must lie in a workload prefix whose tunnel is that same peer (weft_tunnels), else it is dropped
 * as WEFT_DROP_SPOOFED: a peer speaks only for its own workloads. Then src identity
 * = VNI, dst identity = ipcache(daddr), policy, counters; on pass WEFT_MARK_ENFORCED is set and
 * the kernel routes the packet to the workload veth (its destination MAC is the device's own,
 * WEFT_VXLAN_MAC, written by the sender). Non-IPv4 from a known peer passes untouched.
 */
#include "lib/common.h"
#include "lib/enforce.h"
#include "lib/mark.h"
#include "lib/tunnel.h"

SEC("tc")
int weft_vxlan_in(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	__u32 daddr;

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0 || !tunnel_peer_known(bpf_htonl(key.remote_ipv4))) {
		__u32 dst_id = WEFT_ID_UNKNOWN;

		if (skb->protocol == bpf_htons(ETH_P_IP) &&
		    bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, daddr), &daddr, sizeof(daddr)) == 0)
			dst_id = ipcache_lookup4(daddr);
		counters_account(WEFT_ID_UNKNOWN, dst_id, skb->len, WEFT_DROP_TUNNEL_SOURCE);
		return TC_ACT_SHOT;
	}
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	/* The inner source must live behind the peer that sent it: in a workload prefix whose tunnel is that peer. */
	{
		__u32 addrs[2];
		struct weft_tunnel_value *t;

		if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, saddr), addrs, sizeof(addrs)) == 0) {
			t = tunnel_lookup4(addrs[0]);
			if (!t || t->remote != bpf_htonl(key.remote_ipv4)) {
				counters_account(key.tunnel_id & WEFT_VNI_MAX, ipcache_lookup4(addrs[1]), skb->len, WEFT_DROP_SPOOFED);
				return TC_ACT_SHOT;
			}
		}
	}
	if (enforce_ipv4(skb, ETH_HLEN, key.tunnel_id & WEFT_VNI_MAX) != WEFT_DROP_NONE)
		return TC_ACT_SHOT;
	mark_set_enforced(skb);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
