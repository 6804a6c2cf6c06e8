/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb_nat: the tc fallback of service load balancing (lb.h), for workloads whose processes are
 * not in the cgroup the agent manages, so no socket program saw their connect. On the workload's
 * veth: lb_tc_dnat (ingress, packets leaving the workload) sends a flow addressed to a VIP:port
 * to a backend chosen on its first packet (the same backend for the rest of the flow, weft_lb_nat)
 * and remembers the way back (weft_lb_rnat); lb_tc_rev (egress, packets into the workload)
 * rewrites the backend's replies to come from the VIP:port again. Checksums are fixed with the
 * csum helpers (CHECKSUM_PARTIAL packets included). A refused new flow (rate limit, no backend)
 * has its packet dropped and counted in weft_lb_drops_v2: the application sees a timeout and
 * retries, not ECONNREFUSED as on the socket path. Least connections sees no closes here, so
 * flows balanced on this path count as connects but not as active connections.
 *
 * Both tables outlive their flows (LRU, no close seen), and a client port comes back. A TCP SYN
 * (without ACK) may open a new flow on an old tuple, or be the retransmit of one whose SYN-ACK was
 * lost (which must reach the same backend). So a SYN to a VIP keeps its entry's backend while
 * the source may still use it (it is among the service's backends for that source) and picks
 * afresh otherwise (a backend removed, ejected or no longer allowed), overwriting both entries. A
 * SYN or a UDP datagram to any other address (a connection the socket path balanced straight to a
 * backend, a datagram a client sends its server directly, or no service at all) ends the tc-path
 * flow its port had to that address: both entries are deleted (lb_end_flow_to) — else its
 * replies would come back "from the VIP" (a TCP client answers the SYN-ACK with a reset and the
 * connection never opens; a connected UDP socket drops them), and a later flow from that port to
 * the VIP would find its forward entry but no way back. For UDP, which has no opening packet,
 * that is one lookup in weft_lb_rnat per datagram a workload sends to an address that is no VIP.
 */
#ifndef WEFT_LB_NAT_H
#define WEFT_LB_NAT_H

#include "common.h"
#include "ipcache.h"
#include "ipv4.h"
#include "lb.h"

#define WEFT_IP_CSUM_OFF(l3) ((l3) + offsetof(struct iphdr, check))
#define WEFT_IP_SADDR_OFF(l3) ((l3) + offsetof(struct iphdr, saddr))
#define WEFT_IP_DADDR_OFF(l3) ((l3) + offsetof(struct iphdr, daddr))

/* Rewrites one IPv4 address (saddr or daddr at `addr_off`) and one port at `port_off`, fixing checksums. */
static __always_inline int lb_rewrite(struct __sk_buff *skb, __u32 l3_off, __u32 l4_off, __u8 proto, __u32 addr_off, __u32 old_addr, __u32 new_addr, __u32 port_off,
				      __u16 old_port, __u16 new_port)
{
	__u32 csum_off = l4_off + (proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : offsetof(struct udphdr, check));
	__u64 l4_flags = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr, l4_flags | BPF_F_PSEUDO_HDR | sizeof(new_addr)) < 0)
		return -1;
	if (bpf_l3_csum_replace(skb, WEFT_IP_CSUM_OFF(l3_off), old_addr, new_addr, sizeof(new_addr)) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0) < 0)
		return -1;
	if (old_port != new_port) {
		if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, l4_flags | sizeof(new_port)) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0) < 0)
			return -1;
	}
	return 0;
}

/* Whether `svc` still lists the backend addr:port (the source may still use it). */
static __always_inline int lb_lists_backend(const struct weft_lb_service *svc, __u32 addr, __u16 port)
{
	for (int i = 0; i < WEFT_LB_MAX_BACKENDS; i++) {
		if (i >= svc->count)
			break;
		if (svc->backends[i].addr == addr && svc->backends[i].port == port)
			return 1;
	}
	return 0;
}

static __always_inline __u32 lb_l4_offset(struct __sk_buff *skb, __u32 l3_off)
{
	__u8 vihl;

	if (bpf_skb_load_bytes(skb, l3_off, &vihl, 1) < 0)
		return 0;
	return l3_off + (vihl & 0x0f) * 4;
}

/* A packet from a workload's port straight to p->daddr:dport: the tc-path flow that port had to a VIP balanced there is over (both entries deleted). */
static __always_inline void lb_end_flow_to(const struct weft_ipv4 *p)
{
	struct weft_lb_flow_key rk = { .saddr = p->daddr, .daddr = p->saddr, .sport = p->dport, .dport = p->ct_sport, .proto = p->proto };
	struct weft_lb_flow_key fk = { .saddr = p->saddr, .sport = p->ct_sport, .proto = p->proto };
	struct weft_lb_nat_value *rev, *fwd;

	rev = bpf_map_lookup_elem(&weft_lb_rnat, &rk);
	if (!rev)
		return;
	fk.daddr = rev->addr;
	fk.dport = rev->port;
	/* the port's flow to that VIP, unless it has moved on to another backend since */
	fwd = bpf_map_lookup_elem(&weft_lb_nat, &fk);
	if (fwd && fwd->addr == p->daddr && fwd->port == p->dport)
		bpf_map_delete_elem(&weft_lb_nat, &fk);
	bpf_map_delete_elem(&weft_lb_rnat, &rk);
}

/*
 * Workload veth ingress (tc fallback): a packet from a workload to a VIP:port is sent to a
 * backend, the same one for the whole flow (weft_lb_nat), and the reply path remembered
 * (weft_lb_rnat). `p` is updated to the rewritten destination, so conntrack notes the real flow.
 * The source identity is ipcache(saddr). Returns WEFT_DROP_NONE, or the reason the packet (a
 * refused new flow) is to be dropped.
 */
static __always_inline __u32 lb_tc_dnat(struct __sk_buff *skb, __u32 l3_off, struct weft_ipv4 *p)
{
	__u32 src_id;
	struct weft_lb_flow_key fk = {};
	struct weft_lb_nat_value *nat, fwd = {}, rev = {};
	struct weft_lb_key key = {};
	struct weft_lb_service *svc;
	struct weft_lb_backend *b;
	__u32 l4_off;
	int idx;

	if ((p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP) || p->dport == 0)
		return WEFT_DROP_NONE;
	if (!lb_is_vip(p->daddr)) {
		if (ipv4_is_tcp_open(p) || p->proto == IPPROTO_UDP)
			lb_end_flow_to(p);
		return WEFT_DROP_NONE;
	}
	src_id = ipcache_lookup4(p->saddr);
	fk.saddr = p->saddr;
	fk.daddr = p->daddr;
	fk.sport = p->ct_sport;
	fk.dport = p->dport;
	fk.proto = p->proto;
	key.vip = p->daddr;
	key.port = p->dport;
	key.proto = p->proto;
	key.src_id = src_id;
	nat = bpf_map_lookup_elem(&weft_lb_nat, &fk);
	if (nat && ipv4_is_tcp_open(p)) {
		/* A new flow on an old tuple, or a retransmitted SYN: the entry's backend only while it is still the source's to use. */
		svc = bpf_map_lookup_elem(&weft_lb_services, &key);
		if (!svc || !lb_lists_backend(svc, nat->addr, nat->port))
			nat = NULL;
	}
	if (nat) {
		fwd = *nat;
	} else {
		svc = bpf_map_lookup_elem(&weft_lb_services, &key);
		if (!svc)
			return WEFT_DROP_NONE;
		if (lb_rate_limited(src_id, p->daddr, svc)) {
			lb_count_drop(src_id, p->daddr, WEFT_DROP_RATE_LIMITED);
			return WEFT_DROP_RATE_LIMITED;
		}
		idx = lb_pick(&key, svc);
		if (idx < 0 || idx >= WEFT_LB_MAX_BACKENDS) {
			lb_count_drop(src_id, p->daddr, WEFT_DROP_NO_BACKEND);
			return WEFT_DROP_NO_BACKEND;
		}
		b = &svc->backends[idx];
		fwd.addr = b->addr;
		fwd.port = b->port;
		bpf_map_update_elem(&weft_lb_nat, &fk, &fwd, BPF_ANY);
		{
			struct weft_lb_flow_key rk = { .saddr = b->addr, .daddr = p->saddr, .sport = b->port, .dport = p->ct_sport, .proto = p->proto };

			rev.addr = p->daddr;
			rev.port = p->dport;
			bpf_map_update_elem(&weft_lb_rnat, &rk, &rev, BPF_ANY);
		}
		lb_count_connect(&key, b, 0);
	}
	l4_off = lb_l4_offset(skb, l3_off);
	if (!l4_off)
		return WEFT_DROP_MALFORMED;
	if (lb_rewrite(skb, l3_off, l4_off, p->proto, WEFT_IP_DADDR_OFF(l3_off), p->daddr, fwd.addr, l4_off + 2, p->dport, fwd.port) < 0)
		return WEFT_DROP_MALFORMED;
	p->daddr = fwd.addr;
	p->dport = fwd.port;
	p->ct_dport = fwd.port;
	return WEFT_DROP_NONE;
}

/* Workload veth egress (tc fallback): a backend's reply to a flow lb_tc_dnat sent shows the VIP:port again. */
static __always_inline void lb_tc_rev(struct __sk_buff *skb, __u32 l3_off)
{
	struct weft_lb_flow_key rk = {};
	struct weft_lb_nat_value *rev;
	struct weft_ipv4 p;
	__u32 l4_off;

	if (ipv4_parse(skb, l3_off, &p) != WEFT_DROP_NONE || !p.have_addrs)
		return;
	if ((p.proto != IPPROTO_TCP && p.proto != IPPROTO_UDP) || p.dport == 0)
		return;
	rk.saddr = p.saddr;
	rk.daddr = p.daddr;
	rk.sport = p.ct_sport;
	rk.dport = p.ct_dport;
	rk.proto = p.proto;
	rev = bpf_map_lookup_elem(&weft_lb_rnat, &rk);
	if (!rev)
		return;
	l4_off = lb_l4_offset(skb, l3_off);
	if (!l4_off)
		return;
	lb_rewrite(skb, l3_off, l4_off, p.proto, WEFT_IP_SADDR_OFF(l3_off), p.saddr, rev->addr, l4_off, p.ct_sport, rev->port);
}

#endif /* WEFT_LB_NAT_H */
