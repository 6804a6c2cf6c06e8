/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * policy: (source identity, destination identity, protocol, destination port) -> verdict.
 *
 * weft_policy_lpm is an LPM trie keyed by (src id, dst id, proto, port prefix): the controller
 * resolves each (src, dst, proto)'s allows and denies into disjoint port intervals with their final
 * verdict (deny wins), and the agent writes each interval as the few port prefixes that cover it
 * exactly, so a rule with a wide port range costs a handful of entries, not one per port. Source,
 * destination, protocol and the pad byte are always matched whole (80 bits); the prefix length
 * adds the port bits that must match (0: every port, 16: one port).
 *
 * The rule:
 *   1. Two lookups: {proto, dport} (the longest prefix holding the port: the one interval of that
 *      protocol covering it) and {proto 0} ("any protocol", stored with every port).
 *   2. If either is DENY -> drop (WEFT_DROP_POLICY_DENY): deny wins.
 *   3. Else if either is ALLOW -> pass.
 *   4. Else if the destination identity is in weft_policy_default with WEFT_POLICY_F_DEFAULT_DENY
 *      -> drop (WEFT_DROP_DEFAULT_DENY). The controller sets that flag on identities that have any
 *      policy ("default deny between identities that have any policy").
 *   5. Else pass: an identity pair that no policy talks about is allowed.
 *
 * The earlier hash map `weft_policy` (one entry per port) is gone; an agent that finds its pin
 * fills the new map first and removes the old pin after the new programs are attached
 * (bpf/src/datapath.ts RETIRED_MAPS).
 */
#ifndef WEFT_POLICY_H
#define WEFT_POLICY_H

#include "common.h"
#include "verdict.h"

/* Bits of the key always matched: src_id, dst_id, proto and pad0. */
#define WEFT_POLICY_FIXED_BITS 80
/* A full lookup key: every bit, the port included. */
#define WEFT_POLICY_FULL_BITS 96

/* LPM trie key: prefixlen first (the kernel's struct bpf_lpm_trie_key layout), then the data it matches. */
struct weft_policy_key {
	__u32 prefixlen; /* WEFT_POLICY_FIXED_BITS + port prefix bits (0..16) */
	__u32 src_id;
	__u32 dst_id;
	__u8 proto;  /* IPPROTO_*; 0 = any protocol (then the port prefix is 0 bits) */
	__u8 pad0;   /* must be 0 */
	__u16 dport; /* destination port (prefix), NETWORK byte order: its high bits come first */
};
WEFT_ASSERT_SIZE(struct weft_policy_key, 16);

struct weft_policy_value {
	__u8 verdict; /* enum weft_verdict */
	__u8 flags;   /* reserved, 0 */
	__u8 pad0[2]; /* must be 0 */
};
WEFT_ASSERT_SIZE(struct weft_policy_value, 4);

/* Per destination identity. */
#define WEFT_POLICY_F_DEFAULT_DENY 0x1

struct weft_policy_default_value {
	__u8 flags;   /* WEFT_POLICY_F_* */
	__u8 pad0[3]; /* must be 0 */
};
WEFT_ASSERT_SIZE(struct weft_policy_default_value, 4);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct weft_policy_key);
	__type(value, struct weft_policy_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_policy_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32); /* destination identity */
	__type(value, struct weft_policy_default_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_policy_default SEC(".maps");

static __always_inline __u8 policy_lookup_one(__u32 src, __u32 dst, __u8 proto, __u16 dport)
{
	struct weft_policy_key key = { .prefixlen = WEFT_POLICY_FULL_BITS, .src_id = src, .dst_id = dst, .proto = proto, .dport = dport };
	struct weft_policy_value *v = bpf_map_lookup_elem(&weft_policy_lpm, &key);

	return v ? v->verdict : WEFT_VERDICT_NONE;
}

/* Returns WEFT_DROP_NONE to pass, otherwise the drop reason. dport in network order. */
static __always_inline __u32 policy_check(__u32 src, __u32 dst, __u8 proto, __u16 dport)
{
	__u8 exact = policy_lookup_one(src, dst, proto, dport);
	__u8 anyproto = proto ? policy_lookup_one(src, dst, 0, 0) : WEFT_VERDICT_NONE;
	struct weft_policy_default_value *d;

	if (exact == WEFT_VERDICT_DENY || anyproto == WEFT_VERDICT_DENY)
		return WEFT_DROP_POLICY_DENY;
	if (exact == WEFT_VERDICT_ALLOW || anyproto == WEFT_VERDICT_ALLOW)
		return WEFT_DROP_NONE;
	d = bpf_map_lookup_elem(&weft_policy_default, &dst);
	if (d && (d->flags & WEFT_POLICY_F_DEFAULT_DENY))
		return WEFT_DROP_DEFAULT_DENY;
	return WEFT_DROP_NONE;
}

#endif /* WEFT_POLICY_H */
