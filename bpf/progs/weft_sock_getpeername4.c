// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_sock_getpeername4: cgroup/getpeername4. A socket connected through a VIP sees the VIP:port
 * it asked for as its peer (getpeername, socket.remoteAddress), not the backend chosen for it.
 */
#include "lib/common.h"
#include "lib/lb.h"

SEC("cgroup/getpeername4")
int weft_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	lb_sock_reverse(ctx);
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
