// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_sock_recvmsg4: cgroup/recvmsg4. A UDP datagram from a backend this socket sent to through
 * a VIP (weft_lb_socks, keyed by the socket's cookie and the backend) is shown coming from the
 * VIP:port the application addressed, so request/reply clients match the answer.
 */
#include "lib/common.h"
#include "lib/lb.h"

SEC("cgroup/recvmsg4")
int weft_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	lb_sock_reverse(ctx);
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
