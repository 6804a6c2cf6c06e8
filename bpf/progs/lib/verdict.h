/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Stable verdict and drop-reason codes.
 *
 * These numbers are ABI: they are stored in pinned maps that outlive an agent upgrade and read by
 * `weft flows` and the agent's metrics. NEVER renumber or reuse a code; only append new ones.
 * bpf/src/layout.ts mirrors them and a test checks that both agree.
 */
#ifndef WEFT_VERDICT_H
#define WEFT_VERDICT_H

/* Policy map verdicts (struct weft_policy_value.verdict). 0 is never written: it means "no entry". */
enum weft_verdict {
	WEFT_VERDICT_NONE = 0,
	WEFT_VERDICT_ALLOW = 1,
	WEFT_VERDICT_DENY = 2,
};

/* Why a packet was dropped (or WEFT_DROP_NONE when it passed). */
enum weft_drop_reason {
	WEFT_DROP_NONE = 0,
	WEFT_DROP_POLICY_DENY = 1,   /* an explicit deny rule matched (deny wins over allow) */
	WEFT_DROP_DEFAULT_DENY = 2,  /* no allow rule and the destination identity is default-deny */
	WEFT_DROP_MALFORMED = 3,     /* IPv4 header truncated or invalid, or the L4 ports missing */
	WEFT_DROP_TUNNEL_SOURCE = 4, /* VXLAN from an underlay address not in weft_tunnel_peers, or no tunnel metadata */
	WEFT_DROP_SPOOFED = 5,       /* a source address its sender may not use: a workload not using its own, or an
					inner VXLAN source outside the sending peer's workload prefix */
	WEFT_DROP_RATE_LIMITED = 6,  /* a new connection to a service over its source identity's rate limit (lb.h):
					refused at connect with ECONNREFUSED, or its first packet dropped on the tc path */
	WEFT_DROP_NO_BACKEND = 7,    /* a new connection to a service that has no backend the source may use (none
					healthy, none its policy allows): refused like a rate-limited one */
	__WEFT_DROP_END,             /* one past the last code; not a reason */
};

#endif /* WEFT_VERDICT_H */
