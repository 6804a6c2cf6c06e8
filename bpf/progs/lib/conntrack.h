/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * conntrack: replies get through. Policy decides at the destination whether a flow may START;
 * the packets that answer it travel the other way and arrive at the source's node, where no rule
 * talks about them (db -> api when only api -> db is allowed). So every node notes the flows it
 * sends (weft_overlay_out on weft0 egress, weft_from_workload for workload traffic, whichever
 * path it takes) and every enforcing program lets through a packet whose reverse tuple was sent
 * recently. Entries are written only by the sending node, for its own packets: a remote peer
 * cannot create one here.
 *
 *   weft_conntrack  LRU hash: {saddr, daddr, sport, dport, proto} as sent -> last time seen.
 *
 * ICMP echo uses the echo id as both ports: a sent echo request lets its echo reply in, and
 * nothing else (another echo request is new traffic for the policy). Other ICMP (errors) is not
 * tracked and is up to the policy; protocols without ports use ports 0. Lifetimes since the last packet SENT: TCP 30 min, UDP 3
 * min, ICMP and others 1 min. The LRU evicts the oldest flows when full.
 */
#ifndef WEFT_CONNTRACK_H
#define WEFT_CONNTRACK_H

#include "common.h"
#include "ipv4.h"

struct weft_ct_key {
	__u32 saddr; /* network byte order, as sent */
	__u32 daddr;
	__u16 sport; /* network byte order; the ICMP echo id for echo; 0 without ports */
	__u16 dport;
	__u8 proto;
	__u8 pad0[3]; /* must be 0 */
};
WEFT_ASSERT_SIZE(struct weft_ct_key, 16);

struct weft_ct_value {
	__u64 last_sent_ns; /* bpf_ktime_get_ns() of the last packet sent on the flow */
};
WEFT_ASSERT_SIZE(struct weft_ct_value, 8);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_ct_key);
	__type(value, struct weft_ct_value);
	__uint(max_entries, 262144);
} weft_conntrack SEC(".maps");

#define WEFT_NS_PER_SEC 1000000000ULL
/* A sent flow's entry is refreshed at most this often (a map write per packet would cost). */
#define WEFT_CT_REFRESH_NS (1ULL * WEFT_NS_PER_SEC)

static __always_inline __u64 ct_lifetime_ns(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return 1800ULL * WEFT_NS_PER_SEC;
	if (proto == IPPROTO_UDP)
		return 180ULL * WEFT_NS_PER_SEC;
	return 60ULL * WEFT_NS_PER_SEC;
}

/* Notes a packet this node sends. ICMP: only echo requests open a flow. */
static __always_inline void ct_note_sent(const struct weft_ipv4 *p)
{
	if (p->proto == IPPROTO_ICMP && p->icmp_echo != WEFT_ICMP_IS_REQUEST)
		return;
	struct weft_ct_key key = { .saddr = p->saddr, .daddr = p->daddr, .sport = p->ct_sport, .dport = p->ct_dport, .proto = p->proto };
	struct weft_ct_value *v = bpf_map_lookup_elem(&weft_conntrack, &key);
	__u64 now = bpf_ktime_get_ns();

	if (v && now - v->last_sent_ns < WEFT_CT_REFRESH_NS)
		return;
	if (v) {
		v->last_sent_ns = now;
		return;
	}
	struct weft_ct_value init = { .last_sent_ns = now };
	bpf_map_update_elem(&weft_conntrack, &key, &init, BPF_ANY);
}

/* Whether a received packet answers a flow this node sent recently. ICMP: only an echo reply does. */
static __always_inline int ct_is_reply(const struct weft_ipv4 *p)
{
	if (p->proto == IPPROTO_ICMP && p->icmp_echo != WEFT_ICMP_IS_REPLY)
		return 0;
	struct weft_ct_key key = { .saddr = p->daddr, .daddr = p->saddr, .sport = p->ct_dport, .dport = p->ct_sport, .proto = p->proto };
	struct weft_ct_value *v = bpf_map_lookup_elem(&weft_conntrack, &key);

	return v && bpf_ktime_get_ns() - v->last_sent_ns < ct_lifetime_ns(p->proto);
}

#endif /* WEFT_CONNTRACK_H */
