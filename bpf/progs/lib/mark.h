/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * mark: the one skb->mark bit Weft owns.
 *
 * WEFT_MARK_ENFORCED ("policy already enforced") is set by weft_overlay_in (weft0 ingress) and
 * weft_vxlan_in (VXLAN device ingress) when a packet passed policy there. The kernel then routes
 * the packet to a workload veth, where weft_to_workload sees the bit, clears it and passes the
 * packet without checking or counting it a second time. weft_from_workload clears it on traffic
 * leaving a workload, so a packet can never arrive at a workload carrying it from elsewhere.
 *
 * Only this bit is ever read or written; every other mark bit belongs to someone else. The value
 * is ABI (bpf/src/layout.ts mirrors it, a test checks both agree). It avoids the bits used by
 * kube-proxy (0x4000, 0x8000), Tailscale (0xff0000) and wg-quick's default fwmark (0xca6c).
 * Policy routing rules that match marks must mask this bit out (ip rule ... fwmark X/MASK).
 */
#ifndef WEFT_MARK_H
#define WEFT_MARK_H

#include "common.h"

#define WEFT_MARK_ENFORCED 0x01000000

static __always_inline int mark_is_enforced(const struct __sk_buff *skb)
{
	return (skb->mark & WEFT_MARK_ENFORCED) != 0;
}

static __always_inline void mark_set_enforced(struct __sk_buff *skb)
{
	skb->mark |= WEFT_MARK_ENFORCED;
}

static __always_inline void mark_clear_enforced(struct __sk_buff *skb)
{
	if (skb->mark & WEFT_MARK_ENFORCED)
		skb->mark &= ~WEFT_MARK_ENFORCED;
}

#endif /* WEFT_MARK_H */
