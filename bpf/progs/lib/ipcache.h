/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ipcache: IPv4 prefix -> numeric identity (longest prefix match).
 *
 * Filled by the agent from the controller's identity entries. An address that matches no prefix
 * is WEFT_ID_WORLD. Reserved identities are small and stable (see DESIGN.md "Model").
 */
#ifndef WEFT_IPCACHE_H
#define WEFT_IPCACHE_H

#include "common.h"

/* Reserved identities: never renumber. */
#define WEFT_ID_UNKNOWN    0
#define WEFT_ID_HOST       1
#define WEFT_ID_WORLD      2
#define WEFT_ID_CONTROLLER 3

/* LPM trie key: prefixlen first (the kernel's struct bpf_lpm_trie_key layout), address in network order. */
struct weft_ipcache_key {
	__u32 prefixlen; /* 0..32 */
	__u32 addr;      /* IPv4 address, network byte order */
};
WEFT_ASSERT_SIZE(struct weft_ipcache_key, 8);

struct weft_ipcache_value {
	__u32 identity;
	__u32 flags; /* reserved, 0 */
};
WEFT_ASSERT_SIZE(struct weft_ipcache_value, 8);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct weft_ipcache_key);
	__type(value, struct weft_ipcache_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_ipcache SEC(".maps");

/* Identity of an IPv4 address (network order); WEFT_ID_WORLD when no prefix matches. */
static __always_inline __u32 ipcache_lookup4(__u32 addr)
{
	struct weft_ipcache_key key = { .prefixlen = 32, .addr = addr };
	struct weft_ipcache_value *v = bpf_map_lookup_elem(&weft_ipcache, &key);

	return v ? v->identity : WEFT_ID_WORLD;
}

#endif /* WEFT_IPCACHE_H */
