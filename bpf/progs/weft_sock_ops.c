// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_sock_ops: sockops of the cgroup the agent manages. Follows the TCP connections that
 * weft_sock_connect4 balanced (found in weft_lb_socks by socket cookie and peer):
 *   TCP_CONNECT_CB          the SYN is about to go: ask for state callbacks on this socket only
 *   ACTIVE_ESTABLISHED_CB   established: count it and its connect latency (now - connect4)
 *   STATE_CB -> TCP_CLOSE   closed: one active connection less (least connections); from
 *                           SYN_SENT it never got established: a failure (the passive health
 *                           signal the agent ejects backends on) when the kernel gave the socket
 *                           an error (refused, timed out, ICMP unreachable) or the SYN had to be
 *                           sent again (no answer within the first retransmission timeout, 1 s)
 *                           before the client gave up. A client that closes its socket before
 *                           then is not a backend failure: a workload cannot get a healthy
 *                           backend ejected by aborting its own connects.
 * Other sockets are not touched and get no callbacks.
 */
#include "lib/common.h"
#include "lib/lb.h"

#define WEFT_TCP_SYN_SENT 2
#define WEFT_TCP_CLOSE 7

/* The kernel's struct sock, only the field read here; CO-RE relocates its offset at load (BTF). */
struct sock___weft {
	int sk_err;
} __attribute__((preserve_access_index));

/* The error the kernel set on a socket that is closing (0: none, the owner closed it). */
static __always_inline int sock_error(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct tcp_sock *tp;

	if (!sk)
		return 0;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	/* struct sock is the first member of struct tcp_sock (through inet_connection_sock) */
	return ((struct sock___weft *)tp)->sk_err;
}

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
		if (skops->args[0] == WEFT_TCP_SYN_SENT && (skops->total_retrans > 0 || sock_error(skops) != 0))
			__sync_fetch_and_add(&st->failures, 1);
	}
	bpf_map_delete_elem(&weft_lb_socks, &sk);
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
