/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * enforce: the policy step shared by every enforcing program: parse IPv4, identities from the
 * ipcache (or a source identity the caller already knows, the VNI), policy_check(), counters.
 * Owns no map.
 */
#ifndef WEFT_ENFORCE_H
#define WEFT_ENFORCE_H

#include "common.h"
#include "verdict.h"
#include "ipv4.h"
#include "ipcache.h"
#include "policy.h"
#include "counters.h"
#include "conntrack.h"

#define WEFT_SRC_FROM_IPCACHE 0xffffffffU

/*
 * Enforces policy on the IPv4 packet at l3_off and counts it for its identity pair. Replies to
 * flows this node sent (conntrack.h) pass without a policy lookup. `src_id` is
 * the source identity, or WEFT_SRC_FROM_IPCACHE to look the source address up. Returns
 * WEFT_DROP_NONE to pass, else the drop reason (already counted). A packet whose IPv4 header
 * cannot be read is counted for the pair (unknown, unknown).
 */
static __always_inline __u32 enforce_ipv4(struct __sk_buff *skb, __u32 l3_off, __u32 src_id)
{
	struct weft_ipv4 p;
	__u32 dst_id, reason;

	reason = ipv4_parse(skb, l3_off, &p);
	if (!p.have_addrs) {
		counters_account(WEFT_ID_UNKNOWN, WEFT_ID_UNKNOWN, skb->len, reason);
		return reason;
	}
	if (src_id == WEFT_SRC_FROM_IPCACHE)
		src_id = ipcache_lookup4(p.saddr);
	dst_id = ipcache_lookup4(p.daddr);
	/* A reply to a flow this node sent is never subject to the destination's policy. */
	if (reason == WEFT_DROP_NONE && !ct_is_reply(&p))
		reason = policy_check(src_id, dst_id, p.proto, p.dport);
	counters_account(src_id, dst_id, skb->len, reason);
	return reason;
}

#endif /* WEFT_ENFORCE_H */
