// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_sock_connect4: cgroup/connect4 of the cgroup the agent manages (every socket of its
 * processes, in any network namespace). A TCP connect (or a UDP connect) to a service's VIP:port
 * is sent to a backend chosen now (lb.h: round robin, least connections, weighted, EWMA weights;
 * among the backends the socket's identity may use), before the SYN: the flow carries the
 * backend's address from its first packet, with no per-packet NAT. Over the source identity's
 * rate limit, or with no backend to choose, connect() fails with ECONNREFUSED (bpf_set_retval;
 * a bare `return 0` would give EPERM) and the refusal is counted (weft_lb_drops_v2).
 */
#include "lib/common.h"
#include "lib/lb.h"

SEC("cgroup/connect4")
int weft_sock_connect4(struct bpf_sock_addr *ctx)
{
	return lb_sock_rewrite(ctx, 1);
}

char _license[] SEC("license") = "Dual BSD/GPL";
