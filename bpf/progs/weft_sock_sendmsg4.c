// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_sock_sendmsg4: cgroup/sendmsg4. A datagram sent with sendto() to a service's VIP:port
 * (unconnected UDP, DNS-style request/reply) goes to a backend chosen for that datagram; the
 * reply is shown coming from the VIP by weft_sock_recvmsg4. Not rate limited (a datagram is not a
 * connection); with no backend sendto() fails with ECONNREFUSED.
 */
#include "lib/common.h"
#include "lib/lb.h"

SEC("cgroup/sendmsg4")
int weft_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return lb_sock_rewrite(ctx, 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
