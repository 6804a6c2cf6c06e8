// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_from_workload: tc ingress of a workload's host-side veth (traffic leaving the workload).
 * L2: Ethernet header. No policy here: enforcement is at the destination.
 *
 * Same-site encapsulation: when the IPv4 destination is in weft_tunnels (a same-site peer's
 * workload prefix that accepts VXLAN), the config names a VXLAN device and the source identity
 * fits a VNI (24 bits), the packet gets a tunnel key (remote = the peer's underlay address, VNI =
 * source identity, TTL 64), its inner destination MAC becomes WEFT_VXLAN_MAC and it is redirected
 * to the VXLAN device (TC_ACT_REDIRECT). Otherwise it passes (TC_ACT_OK) and routing sends it
 * through WireGuard. WEFT_MARK_ENFORCED is cleared on everything leaving a workload. Every IPv4
 * packet is noted in conntrack first, so the replies to it pass the policy at this node.
 *
 * Services (tc fallback, lb_nat.h): a packet still addressed to a service VIP (its process was not
 * in the cgroup whose connect4 program would have chosen a backend) gets a backend's address
 * here, before conntrack and the tunnel lookup see it; a refused new flow is dropped.
 */
#include "lib/common.h"
#include "lib/config.h"
#include "lib/conntrack.h"
#include "lib/counters.h"
#include "lib/endpoints.h"
#include "lib/ipcache.h"
#include "lib/lb_nat.h"
#include "lib/mark.h"
#include "lib/tunnel.h"

SEC("tc")
int weft_from_workload(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	struct weft_tunnel_value *tunnel;
	struct weft_config *cfg;
	struct ethhdr *eth;
	void *data, *data_end;
	struct weft_ipv4 p;
	__u32 src_id;

	mark_clear_enforced(skb);
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ipv4_parse(skb, ETH_HLEN, &p);
	if (!p.have_addrs)
		return TC_ACT_OK;
	if (!endpoint_source_ok(skb->ifindex, p.saddr)) {
		counters_account(ipcache_lookup4(p.saddr), ipcache_lookup4(p.daddr), skb->len, WEFT_DROP_SPOOFED);
		return TC_ACT_SHOT;
	}
	if (lb_tc_dnat(skb, ETH_HLEN, &p) != WEFT_DROP_NONE)
		return TC_ACT_SHOT;
	/* Whichever path it takes (VXLAN or WireGuard), the workload sent this flow: its replies may come back. */
	ct_note_sent(&p);
	tunnel = tunnel_lookup4(p.daddr);
	if (!tunnel)
		return TC_ACT_OK;
	cfg = config_get();
	if (!cfg || !cfg->vxlan_ifindex)
		return TC_ACT_OK;
	src_id = ipcache_lookup4(p.saddr);
	if (src_id > WEFT_VNI_MAX)
		return TC_ACT_OK;

	key.remote_ipv4 = bpf_ntohl(tunnel->remote); /* the helper takes host order */
	key.tunnel_id = src_id;
	key.tunnel_ttl = WEFT_TUNNEL_TTL;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return TC_ACT_OK;

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	eth->h_dest[0] = WEFT_VXLAN_MAC_0;
	eth->h_dest[1] = WEFT_VXLAN_MAC_1;
	eth->h_dest[2] = WEFT_VXLAN_MAC_2;
	eth->h_dest[3] = WEFT_VXLAN_MAC_3;
	eth->h_dest[4] = WEFT_VXLAN_MAC_4;
	eth->h_dest[5] = WEFT_VXLAN_MAC_5;
	return bpf_redirect(cfg->vxlan_ifindex, 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
