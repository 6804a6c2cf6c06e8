/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * counters: per identity pair: packets and bytes seen (passed or dropped) and dropped packets by
 * drop reason, added atomically. Entries are created on first packet; LRU so a flood of pairs
 * evicts old ones instead of failing.
 *
 * weft_counters_v2 replaced weft_counters, the same layout per CPU (LRU per-CPU hash): the kernel
 * preallocates an LRU map's entries when it creates the map, and a per-CPU one allocates each
 * entry's per-CPU value on its own under one lock for the whole machine — 65,536 allocations,
 * ~70 ms per map on an idle host, serialised across every agent starting at once. One shared
 * value takes a single allocation; the price is an atomic add per field counted, on a cache line
 * that moves between CPUs only when one pair's packets do.
 */
#ifndef WEFT_COUNTERS_H
#define WEFT_COUNTERS_H

#include "common.h"
#include "verdict.h"

/* Slots of weft_counters_value.drops: room for reasons appended to verdict.h without a layout change. */
#define WEFT_COUNTERS_DROP_SLOTS 8
_Static_assert(__WEFT_DROP_END <= WEFT_COUNTERS_DROP_SLOTS, "a drop reason has no counter slot");

struct weft_counters_key {
	__u32 src_id;
	__u32 dst_id;
};
WEFT_ASSERT_SIZE(struct weft_counters_key, 8);

struct weft_counters_value {
	__u64 packets; /* every packet seen for the pair, passed or dropped */
	__u64 bytes;   /* skb->len of those packets */
	__u64 drops[WEFT_COUNTERS_DROP_SLOTS]; /* dropped packets by enum weft_drop_reason; [0] (none) stays 0 */
};
WEFT_ASSERT_SIZE(struct weft_counters_value, 80);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_counters_key);
	__type(value, struct weft_counters_value);
	__uint(max_entries, 65536);
} weft_counters_v2 SEC(".maps");

/* Counts one packet of `bytes` for the pair; `reason` is WEFT_DROP_NONE when it passed. */
static __always_inline void counters_account(__u32 src, __u32 dst, __u32 bytes, __u32 reason)
{
	struct weft_counters_key key = { .src_id = src, .dst_id = dst };
	struct weft_counters_value *v = bpf_map_lookup_elem(&weft_counters_v2, &key);

	if (!v) {
		struct weft_counters_value init = {};

		bpf_map_update_elem(&weft_counters_v2, &key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&weft_counters_v2, &key);
		if (!v)
			return;
	}
	/* One value for every CPU: atomic adds. */
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, bytes);
	if (reason != WEFT_DROP_NONE && reason < WEFT_COUNTERS_DROP_SLOTS)
		__sync_fetch_and_add(&v->drops[reason], 1);
}

#endif /* WEFT_COUNTERS_H */
