/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * endpoints: the local workloads, by the ifindex of their host-side veth, with the one source
 * address each may use. weft_from_workload drops (WEFT_DROP_SPOOFED) an IPv4 packet whose source
 * is not the workload's own address, so a workload cannot borrow another's identity: identities
 * come from source addresses (ipcache), and the VNI carries the sender's.
 *
 *   weft_endpoints  hash: host-side veth ifindex -> {addr, identity}. Written by the agent before
 *                   it attaches weft_from_workload to that veth. A veth with no entry is not
 *                   checked (the agent never attaches to one).
 */
#ifndef WEFT_ENDPOINTS_H
#define WEFT_ENDPOINTS_H

#include "common.h"

struct weft_endpoint_value {
	__u32 addr;     /* the workload's IPv4 address, network byte order */
	__u32 identity; /* its identity (informational; the ipcache is the source of truth) */
};
WEFT_ASSERT_SIZE(struct weft_endpoint_value, 8);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32); /* ifindex of the workload's host-side veth */
	__type(value, struct weft_endpoint_value);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_endpoints SEC(".maps");

/* Whether `saddr` (network order) may be used on the workload veth `ifindex`. */
static __always_inline int endpoint_source_ok(__u32 ifindex, __u32 saddr)
{
	struct weft_endpoint_value *v = bpf_map_lookup_elem(&weft_endpoints, &ifindex);

	return !v || v->addr == saddr;
}

#endif /* WEFT_ENDPOINTS_H */
