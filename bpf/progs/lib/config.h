/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * config: one entry (key 0) of host-wide settings the agent writes.
 *   vxlan_ifindex  ifindex of this host's Weft VXLAN (collect_md) device; 0 = no VXLAN, every
 *                  packet takes the WireGuard path.
 */
#ifndef WEFT_CONFIG_H
#define WEFT_CONFIG_H

#include "common.h"

struct weft_config {
	__u32 vxlan_ifindex;
	__u32 pad0;        /* must be 0 */
	__u64 reserved[3]; /* must be 0; room for settings without a layout change */
};
WEFT_ASSERT_SIZE(struct weft_config, 32);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct weft_config);
	__uint(max_entries, 1);
} weft_config SEC(".maps");

static __always_inline struct weft_config *config_get(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&weft_config, &key);
}

#endif /* WEFT_CONFIG_H */
