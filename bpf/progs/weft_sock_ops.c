// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_sock_ops: sockops of the cgroup the agent manages. Follows the TCP connections that
 * weft_sock_connect4 balanced (found in weft_lb_socks by socket cookie and peer):
 *   TCP_CONNECT_CB          the SYN is about to go: ask for state callbacks on this socket only
 *   ACTIVE_ESTABLISHED_CB   established: count it and its connect latency (now - connect4)
 *   STATE_CB -> TCP_CLOSE   closed: one active connection less (least connections); from
 *                           SYN_SENT it never got established: a failure (refused, timed out),
 *                           the passive health signal the agent ejects backends on
 * Other sockets are not touched and get no callbacks.
 */
#include "lib/common.h"
#include "lib/lb.h"

#define WEFT_TCP_SYN_SENT 2
#define WEFT_TCP_CLOSE 7

static __always_inline struct weft_lb_sock_value *lb_sock_of(struct bpf_sock_ops *skops, struct weft_lb_sock_key *sk)
{
	if (skops->family != 2 /* AF_INET */)
		return NULL;
	sk->cookie = bpf_get_socket_cookie(skops);
	sk->backend = skops->remote_ip4;
	/* remote_port holds the port in network order in its upper 16 bits (little endian) */
	sk->bport = bpf_htons((__u16)bpf_ntohl(skops->remote_port));
	sk->proto = IPPROTO_TCP;
	return bpf_map_lookup_elem(&weft_lb_socks, sk);
}

SEC("sockops")
int weft_sock_ops(struct bpf_sock_ops *skops)
{
	struct weft_lb_sock_key sk = {};
	struct weft_lb_sock_value *sv;
	struct weft_lb_stats_value *st;
	struct weft_lb_backend b = {};
	__u32 op = skops->op;

	if (op != BPF_SOCK_OPS_TCP_CONNECT_CB && op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_STATE_CB)
		return 1;
	sv = lb_sock_of(skops, &sk);
	if (!sv)
		return 1;
	if (op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		return 1;
	}
	b.addr = sk.backend;
	b.port = sk.bport;
	st = lb_stats(sv->vip, sv->port, IPPROTO_TCP, &b, 0);
	if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
		if (st) {
			__sync_fetch_and_add(&st->established, 1);
			__sync_fetch_and_add(&st->latency_sum_ns, bpf_ktime_get_ns() - sv->start_ns);
		}
		return 1;
	}
	/* BPF_SOCK_OPS_STATE_CB: args[0] old state, args[1] new state */
	if (skops->args[1] != WEFT_TCP_CLOSE)
		return 1;
	if (st) {
		__sync_fetch_and_add(&st->active, -1);
		if (skops->args[0] == WEFT_TCP_SYN_SENT)
			__sync_fetch_and_add(&st->failures, 1);
	}
	bpf_map_delete_elem(&weft_lb_socks, &sk);
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
