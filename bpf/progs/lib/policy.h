/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * policy: (source identity, destination identity, protocol, destination port) -> verdict.
 *
 * The rule implemented (first step of issue 3):
 *   1. Three lookups: exact {proto, dport}; {proto, dport 0} ("any port of proto");
 *      {proto 0, dport 0} ("any protocol").
 *   2. If any of them is DENY -> drop (WEFT_DROP_POLICY_DENY): deny wins.
 *   3. Else if any is ALLOW -> pass.
 *   4. Else if the destination identity is in weft_policy_default with WEFT_POLICY_F_DEFAULT_DENY
 *      -> drop (WEFT_DROP_DEFAULT_DENY). The controller sets that flag on identities that have any
 *      policy ("default deny between identities that have any policy").
 *   5. Else pass: an identity pair that no policy talks about is allowed.
 */
#ifndef WEFT_POLICY_H
#define WEFT_POLICY_H

#include "common.h"
#include "verdict.h"

struct weft_policy_key {
	__u32 src_id;
	__u32 dst_id;
	__u8 proto;  /* IPPROTO_*; 0 = any protocol (then dport must be 0) */
	__u8 pad0;   /* must be 0 */
	__u16 dport; /* destination port, NETWORK byte order; 0 = any port */
};
WEFT_ASSERT_SIZE(struct weft_policy_key, 12);

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
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct weft_policy_key);
	__type(value, struct weft_policy_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32); /* destination identity */
	__type(value, struct weft_policy_default_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_policy_default SEC(".maps");

static __always_inline __u8 policy_lookup_one(__u32 src, __u32 dst, __u8 proto, __u16 dport)
{
	struct weft_policy_key key = { .src_id = src, .dst_id = dst, .proto = proto, .dport = dport };
	struct weft_policy_value *v = bpf_map_lookup_elem(&weft_policy, &key);

	return v ? v->verdict : WEFT_VERDICT_NONE;
}

/* Returns WEFT_DROP_NONE to pass, otherwise the drop reason. dport in network order. */
static __always_inline __u32 policy_check(__u32 src, __u32 dst, __u8 proto, __u16 dport)
{
	__u8 exact = policy_lookup_one(src, dst, proto, dport);
	__u8 anyport = dport ? policy_lookup_one(src, dst, proto, 0) : WEFT_VERDICT_NONE;
	__u8 anyproto = policy_lookup_one(src, dst, 0, 0);
	struct weft_policy_default_value *d;

	if (exact == WEFT_VERDICT_DENY || anyport == WEFT_VERDICT_DENY || anyproto == WEFT_VERDICT_DENY)
		return WEFT_DROP_POLICY_DENY;
	if (exact == WEFT_VERDICT_ALLOW || anyport == WEFT_VERDICT_ALLOW || anyproto == WEFT_VERDICT_ALLOW)
		return WEFT_DROP_NONE;
	d = bpf_map_lookup_elem(&weft_policy_default, &dst);
	if (d && (d->flags & WEFT_POLICY_F_DEFAULT_DENY))
		return WEFT_DROP_DEFAULT_DENY;
	return WEFT_DROP_NONE;
}

#endif /* WEFT_POLICY_H */
