/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tunnel: same-site VXLAN encapsulation (collect_md device, bpf_skb_set_tunnel_key) with the
 * source identity in the VNI.
 *
 *   weft_tunnels       LPM: workload prefix of a same-site peer that accepts VXLAN -> its underlay
 *                      IPv4 address. Read by weft_from_workload to pick the remote.
 *   weft_tunnel_peers  hash: underlay IPv4 of a same-site peer -> flags. weft_vxlan_in drops VXLAN
 *                      from any other underlay address (WEFT_DROP_TUNNEL_SOURCE).
 *
 * Every Weft VXLAN device has the fixed MAC WEFT_VXLAN_MAC; the sender writes it as the inner
 * destination so the receiving device takes the frame as its own (PACKET_HOST) and routes it.
 */
#ifndef WEFT_TUNNEL_H
#define WEFT_TUNNEL_H

#include "common.h"

/* 02:77:65:66:74:00 ("wef" "t", locally administered, unicast). bpf/src/layout.ts WEFT_VXLAN_MAC. */
#define WEFT_VXLAN_MAC_0 0x02
#define WEFT_VXLAN_MAC_1 0x77
#define WEFT_VXLAN_MAC_2 0x65
#define WEFT_VXLAN_MAC_3 0x66
#define WEFT_VXLAN_MAC_4 0x74
#define WEFT_VXLAN_MAC_5 0x00

/* A VNI is 24 bits: identities above this cannot be carried and take the WireGuard path. */
#define WEFT_VNI_MAX 0xffffff
#define WEFT_TUNNEL_TTL 64

/* Same layout as weft_ipcache_key (struct bpf_lpm_trie_key). */
struct weft_tunnel_key {
	__u32 prefixlen; /* 0..32 */
	__u32 addr;      /* IPv4 prefix, network byte order */
};
WEFT_ASSERT_SIZE(struct weft_tunnel_key, 8);

struct weft_tunnel_value {
	__u32 remote; /* underlay IPv4 of the peer, network byte order */
	__u32 flags;  /* reserved, 0 */
};
WEFT_ASSERT_SIZE(struct weft_tunnel_value, 8);

struct weft_tunnel_peer_value {
	__u32 flags; /* reserved, 0 */
};
WEFT_ASSERT_SIZE(struct weft_tunnel_peer_value, 4);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct weft_tunnel_key);
	__type(value, struct weft_tunnel_value);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_tunnels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32); /* underlay IPv4, network byte order */
	__type(value, struct weft_tunnel_peer_value);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_tunnel_peers SEC(".maps");

/* The tunnel for an IPv4 destination (network order), or NULL. */
static __always_inline struct weft_tunnel_value *tunnel_lookup4(__u32 daddr)
{
	struct weft_tunnel_key key = { .prefixlen = 32, .addr = daddr };

	return bpf_map_lookup_elem(&weft_tunnels, &key);
}

/* Whether an underlay IPv4 address (network order) is a same-site tunnel peer. */
static __always_inline int tunnel_peer_known(__u32 remote)
{
	return bpf_map_lookup_elem(&weft_tunnel_peers, &remote) != NULL;
}

#endif /* WEFT_TUNNEL_H */
