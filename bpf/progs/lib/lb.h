/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb: services. A service port (virtual IP, port, protocol) is balanced over backends when a
 * socket connects (cgroup connect4 / sendmsg4, weft_sock_*.c), so TCP flows carry no per-packet
 * NAT; workloads whose processes are outside the cgroup the agent manages are balanced on their
 * veth instead (tc fallback, lb_tc_dnat / lb_tc_rev, with a NAT table).
 *
 * The agent decides WHAT each connection may choose from; the datapath only draws:
 *   weft_lb_vips      hash: VIP -> flags. One cheap lookup tells "not a service address".
 *   weft_lb_sources   hash: network namespace cookie -> identity of the sockets in it (the host's
 *                     netns -> the node's identity, each workload's netns -> the workload's).
 *                     A socket in a netns the agent does not know is left alone.
 *   weft_lb_services  hash: {vip, port, proto, source identity} -> the backends that source may use
 *                     (policy, health and locality already applied by the agent) and a selection
 *                     table of backend indices:
 *                       round-robin         table[cursor++ % table_len] (cursor in weft_lb_rr)
 *                       weighted, ewma      table[random % table_len]; each backend fills a share
 *                                           of the table proportional to its weight
 *                       least-connections   the table lists each candidate once; the one with the
 *                                           fewest active connections (weft_lb_stats) wins, ties
 *                                           from a random start
 *                     table_len 0 = nothing to choose: the connection is refused (ECONNREFUSED).
 *                     Also the rate limit of each source identity (new connections per second).
 *   weft_lb_rr        LRU hash: service key -> round-robin cursor (the programs' own state).
 *   weft_lb_ratelimit LRU hash: {source identity, vip} -> GCRA theoretical arrival time.
 *   weft_lb_stats     hash: {vip, port, proto, backend, backend port} -> active connections,
 *                     connects, failures, connect latency (sum, count); read by the agent.
 *   weft_lb_socks     LRU hash: {socket cookie, backend, backend port, proto} -> the VIP:port the
 *                     socket asked for: getpeername4/recvmsg4 show the VIP again, sock_ops finds
 *                     the connection's service to count it.
 *   weft_lb_drops_v2  LRU hash: {source identity, vip} -> refused new connections by drop
 *                     reason (WEFT_DROP_RATE_LIMITED, WEFT_DROP_NO_BACKEND), added atomically
 *                     (it replaced weft_lb_drops, per-CPU: see counters.h for why).
 *   weft_lb_nat       LRU hash (tc path): a client's flow to a VIP -> its backend.
 *   weft_lb_rnat      LRU hash (tc path): {client, backend, ports, proto} -> the VIP:port replies
 *                     are rewritten to.
 *
 * Everything is IPv4; addresses and ports in network byte order.
 */
#ifndef WEFT_LB_H
#define WEFT_LB_H

#include "common.h"
#include "verdict.h"
#include "ipv4.h"
#include "counters.h"

#define WEFT_LB_MAX_BACKENDS 64
#define WEFT_LB_TABLE_SIZE 1024 /* a power of two: slots are masked with SIZE-1 */
#define WEFT_ECONNREFUSED 111

/* Selection algorithms (weft_lb_service.algo). Never renumber. */
#define WEFT_LB_ROUND_ROBIN 1
#define WEFT_LB_LEAST_CONN 2
#define WEFT_LB_WEIGHTED 3
#define WEFT_LB_EWMA 4 /* like weighted: the agent turns latencies into weights */

struct weft_lb_vip_value {
	__u32 flags; /* reserved, 0 */
};
WEFT_ASSERT_SIZE(struct weft_lb_vip_value, 4);

struct weft_lb_source_value {
	__u32 identity;
	__u32 flags; /* reserved, 0 */
};
WEFT_ASSERT_SIZE(struct weft_lb_source_value, 8);

/* A service port as one source identity sees it. */
struct weft_lb_key {
	__u32 vip;    /* network order */
	__u16 port;   /* network order */
	__u8 proto;   /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad0;    /* must be 0 */
	__u32 src_id; /* source identity */
};
WEFT_ASSERT_SIZE(struct weft_lb_key, 12);

struct weft_lb_backend {
	__u32 addr;  /* network order */
	__u16 port;  /* network order */
	__u16 pad0;  /* must be 0 */
};
WEFT_ASSERT_SIZE(struct weft_lb_backend, 8);

struct weft_lb_service {
	__u8 algo;       /* WEFT_LB_* */
	__u8 count;      /* backends[] in use */
	__u16 table_len; /* table[] in use; 0 = no backend: refuse */
	__u32 rate;      /* new connections per second per source identity; 0 = unlimited */
	__u32 burst;     /* connections allowed at once after a quiet period (>= 1 when rate is set) */
	__u32 pad0;      /* must be 0 */
	struct weft_lb_backend backends[WEFT_LB_MAX_BACKENDS];
	__u8 table[WEFT_LB_TABLE_SIZE]; /* indices into backends[] */
};
WEFT_ASSERT_SIZE(struct weft_lb_service, 1552);

struct weft_lb_rr_value {
	__u64 next;
};
WEFT_ASSERT_SIZE(struct weft_lb_rr_value, 8);

struct weft_lb_rate_key {
	__u32 src_id;
	__u32 vip; /* network order */
};
WEFT_ASSERT_SIZE(struct weft_lb_rate_key, 8);

struct weft_lb_rate_value {
	__u64 tat_ns; /* GCRA theoretical arrival time (bpf_ktime_get_ns clock) */
};
WEFT_ASSERT_SIZE(struct weft_lb_rate_value, 8);

struct weft_lb_stats_key {
	__u32 vip;     /* network order */
	__u32 backend; /* network order */
	__u16 port;    /* service port, network order */
	__u16 bport;   /* backend port, network order */
	__u8 proto;
	__u8 pad0[3];  /* must be 0 */
};
WEFT_ASSERT_SIZE(struct weft_lb_stats_key, 16);

struct weft_lb_stats_value {
	__s64 active;          /* TCP connections open now (socket path: connect to close) */
	__u64 connects;        /* connections sent to the backend (both paths) */
	__u64 failures;        /* TCP connects that never got established (refused, timed out) */
	__u64 established;     /* TCP connects that did */
	__u64 latency_sum_ns;  /* connect-to-established time, summed over `established` */
	__u64 reserved[3];     /* must be 0 */
};
WEFT_ASSERT_SIZE(struct weft_lb_stats_value, 64);

struct weft_lb_sock_key {
	__u64 cookie;  /* bpf_get_socket_cookie */
	__u32 backend; /* network order */
	__u16 bport;   /* network order */
	__u8 proto;
	__u8 pad0;     /* must be 0 */
};
WEFT_ASSERT_SIZE(struct weft_lb_sock_key, 16);

struct weft_lb_sock_value {
	__u32 vip;      /* what the socket asked for, network order */
	__u16 port;     /* network order */
	__u16 pad0;
	__u64 start_ns; /* when connect4 chose the backend */
};
WEFT_ASSERT_SIZE(struct weft_lb_sock_value, 16);

struct weft_lb_drops_value {
	__u64 drops[WEFT_COUNTERS_DROP_SLOTS]; /* refused new connections by enum weft_drop_reason */
};
WEFT_ASSERT_SIZE(struct weft_lb_drops_value, 64);

struct weft_lb_flow_key {
	__u32 saddr; /* network order */
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad0[3]; /* must be 0 */
};
WEFT_ASSERT_SIZE(struct weft_lb_flow_key, 16);

struct weft_lb_nat_value {
	__u32 addr;  /* backend (weft_lb_nat) or VIP (weft_lb_rnat), network order */
	__u16 port;
	__u16 pad0;
};
WEFT_ASSERT_SIZE(struct weft_lb_nat_value, 8);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct weft_lb_vip_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_lb_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct weft_lb_source_value);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_lb_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct weft_lb_key);
	__type(value, struct weft_lb_service);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_lb_key);
	__type(value, struct weft_lb_rr_value);
	__uint(max_entries, 16384);
} weft_lb_rr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_lb_rate_key);
	__type(value, struct weft_lb_rate_value);
	__uint(max_entries, 65536);
} weft_lb_ratelimit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct weft_lb_stats_key);
	__type(value, struct weft_lb_stats_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} weft_lb_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_lb_sock_key);
	__type(value, struct weft_lb_sock_value);
	__uint(max_entries, 262144);
} weft_lb_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_lb_rate_key);
	__type(value, struct weft_lb_drops_value);
	__uint(max_entries, 65536);
} weft_lb_drops_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_lb_flow_key);
	__type(value, struct weft_lb_nat_value);
	__uint(max_entries, 262144);
} weft_lb_nat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct weft_lb_flow_key);
	__type(value, struct weft_lb_nat_value);
	__uint(max_entries, 262144);
} weft_lb_rnat SEC(".maps");

static __always_inline int lb_is_vip(__u32 addr)
{
	return bpf_map_lookup_elem(&weft_lb_vips, &addr) != NULL;
}

/* The identity of the sockets of a network namespace; 0 when the agent does not know it. */
static __always_inline __u32 lb_source_identity(__u64 netns_cookie)
{
	struct weft_lb_source_value *v = bpf_map_lookup_elem(&weft_lb_sources, &netns_cookie);

	return v ? v->identity : 0;
}

/* Counts a refused new connection of `src_id` to `vip`. */
static __always_inline void lb_count_drop(__u32 src_id, __u32 vip, __u32 reason)
{
	struct weft_lb_rate_key key = { .src_id = src_id, .vip = vip };
	struct weft_lb_drops_value *v = bpf_map_lookup_elem(&weft_lb_drops_v2, &key);

	if (!v) {
		struct weft_lb_drops_value init = {};

		bpf_map_update_elem(&weft_lb_drops_v2, &key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&weft_lb_drops_v2, &key);
		if (!v)
			return;
	}
	if (reason < WEFT_COUNTERS_DROP_SLOTS)
		__sync_fetch_and_add(&v->drops[reason], 1);
}

/*
 * Token bucket per (source identity, service) as GCRA: each connection moves the theoretical
 * arrival time (tat) one emission interval (1 s / rate) ahead of max(tat, now); a connection
 * is refused when that would put tat more than `burst` intervals into the future. One 64-bit
 * compare-and-swap per connection, retried a few times under contention. Returns 1 to refuse.
 */
static __always_inline int lb_rate_limited(__u32 src_id, __u32 vip, const struct weft_lb_service *svc)
{
	struct weft_lb_rate_key key = { .src_id = src_id, .vip = vip };
	struct weft_lb_rate_value *v;
	__u64 now, interval, limit, old, base, next;
	__u32 burst = svc->burst ? svc->burst : 1;
	int i;

	if (!svc->rate)
		return 0;
	v = bpf_map_lookup_elem(&weft_lb_ratelimit, &key);
	if (!v) {
		struct weft_lb_rate_value init = {};

		bpf_map_update_elem(&weft_lb_ratelimit, &key, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&weft_lb_ratelimit, &key);
		if (!v)
			return 0; /* fail open: the map is full of fresher buckets */
	}
	now = bpf_ktime_get_ns();
	interval = 1000000000ULL / svc->rate;
	limit = interval * burst;
	for (i = 0; i < 4; i++) {
		old = v->tat_ns;
		base = old > now ? old : now;
		next = base + interval;
		if (next - now > limit)
			return 1;
		if (__sync_val_compare_and_swap(&v->tat_ns, old, next) == old)
			return 0;
	}
	return 1; /* lost every race: the bucket is being drained right now */
}

static __always_inline struct weft_lb_stats_value *lb_stats(__u32 vip, __u16 port, __u8 proto, const struct weft_lb_backend *b, int create)
{
	struct weft_lb_stats_key key = { .vip = vip, .backend = b->addr, .port = port, .bport = b->port, .proto = proto };
	struct weft_lb_stats_value *v = bpf_map_lookup_elem(&weft_lb_stats, &key);

	if (v || !create)
		return v;
	{
		struct weft_lb_stats_value init = {};

		bpf_map_update_elem(&weft_lb_stats, &key, &init, BPF_NOEXIST);
	}
	return bpf_map_lookup_elem(&weft_lb_stats, &key);
}

/* The least-connections scan over a service's table, one slot per bpf_loop step (lb_least_conn_step). */
struct weft_lb_scan {
	const struct weft_lb_key *key;
	const struct weft_lb_service *svc;
	__u32 len;
	__u32 start;
	__u32 best; /* slot of the fewest active connections so far */
	__u32 found;
	__s64 best_active;
};

/*
 * One slot of the scan: the backend it names and its active connections. A callback of
 * bpf_loop, so the verifier checks this body once, not once per slot as it would a bounded
 * loop's (64 slots of this body were 94 % of the instructions it processed for the programs
 * that balance: ~70,000 for weft_from_workload, ~60,000 for connect4).
 */
static long lb_least_conn_step(__u32 i, void *data)
{
	struct weft_lb_scan *c = data;
	struct weft_lb_stats_value *st;
	__u32 s, idx;
	__s64 active;

	if (i >= c->len || c->len == 0)
		return 1;
	s = (c->start + i) % c->len;
	idx = c->svc->table[s & (WEFT_LB_TABLE_SIZE - 1)];
	if (idx >= WEFT_LB_MAX_BACKENDS)
		return 0;
	st = lb_stats(c->key->vip, c->key->port, c->key->proto, &c->svc->backends[idx], 0);
	active = st ? st->active : 0;
	if (!c->found || active < c->best_active) {
		c->found = 1;
		c->best = s;
		c->best_active = active;
	}
	return 0;
}

/* The backend index for a new connection under `svc`, or -1 when there is none. */
static __always_inline int lb_pick(const struct weft_lb_key *key, const struct weft_lb_service *svc)
{
	__u32 len = svc->table_len, slot, i;

	if (len == 0 || len > WEFT_LB_TABLE_SIZE || svc->count == 0)
		return -1;
	if (svc->algo == WEFT_LB_ROUND_ROBIN) {
		struct weft_lb_rr_value *rr = bpf_map_lookup_elem(&weft_lb_rr, key);

		if (!rr) {
			struct weft_lb_rr_value init = {};

			bpf_map_update_elem(&weft_lb_rr, key, &init, BPF_NOEXIST);
			rr = bpf_map_lookup_elem(&weft_lb_rr, key);
		}
		slot = rr ? (__u32)(__sync_fetch_and_add(&rr->next, 1) % len) : bpf_get_prandom_u32() % len;
	} else if (svc->algo == WEFT_LB_LEAST_CONN) {
		struct weft_lb_scan scan = { .key = key, .svc = svc, .len = len, .start = bpf_get_prandom_u32() % len };

		bpf_loop(WEFT_LB_MAX_BACKENDS, lb_least_conn_step, &scan, 0);
		slot = scan.best;
	} else {
		slot = bpf_get_prandom_u32() % len;
	}
	i = svc->table[slot & (WEFT_LB_TABLE_SIZE - 1)];
	if (i >= svc->count || i >= WEFT_LB_MAX_BACKENDS)
		return -1;
	return (int)i;
}

/* Marks the start of a connection to backend `b` of the service port in `key`. */
static __always_inline void lb_count_connect(const struct weft_lb_key *key, const struct weft_lb_backend *b, int track_active)
{
	struct weft_lb_stats_value *st = lb_stats(key->vip, key->port, key->proto, b, 1);

	if (!st)
		return;
	__sync_fetch_and_add(&st->connects, 1);
	if (track_active)
		__sync_fetch_and_add(&st->active, 1);
}

/*
 * connect4 / sendmsg4: VIP:port -> a backend, before the kernel routes anything. Returns the
 * program's verdict: 1 (go on, maybe rewritten) or 0 with the syscall's errno set to
 * ECONNREFUSED (rate limited, or no backend). `is_connect` is 0 for sendmsg4 (unconnected UDP,
 * one choice per datagram: not rate limited and not counted as a connection).
 */
static __always_inline int lb_sock_rewrite(struct bpf_sock_addr *ctx, int is_connect)
{
	struct weft_lb_key key = {};
	struct weft_lb_service *svc;
	struct weft_lb_backend *b;
	__u32 proto = ctx->protocol;
	__u32 vip = ctx->user_ip4;
	__u16 port = (__u16)ctx->user_port;
	int idx;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 1;
	if (!lb_is_vip(vip))
		return 1;
	key.src_id = lb_source_identity(bpf_get_netns_cookie(ctx));
	if (!key.src_id)
		return 1;
	key.vip = vip;
	key.port = port;
	key.proto = (__u8)proto;
	svc = bpf_map_lookup_elem(&weft_lb_services, &key);
	if (!svc)
		return 1;
	if (is_connect && lb_rate_limited(key.src_id, vip, svc)) {
		lb_count_drop(key.src_id, vip, WEFT_DROP_RATE_LIMITED);
		bpf_set_retval(-WEFT_ECONNREFUSED);
		return 0;
	}
	idx = lb_pick(&key, svc);
	if (idx < 0 || idx >= WEFT_LB_MAX_BACKENDS) {
		lb_count_drop(key.src_id, vip, WEFT_DROP_NO_BACKEND);
		bpf_set_retval(-WEFT_ECONNREFUSED);
		return 0;
	}
	b = &svc->backends[idx];
	ctx->user_ip4 = b->addr;
	ctx->user_port = b->port;
	{
		struct weft_lb_sock_key sk = { .cookie = bpf_get_socket_cookie(ctx), .backend = b->addr, .bport = b->port, .proto = (__u8)proto };
		struct weft_lb_sock_value sv = { .vip = vip, .port = port, .start_ns = bpf_ktime_get_ns() };

		bpf_map_update_elem(&weft_lb_socks, &sk, &sv, BPF_ANY);
	}
	if (is_connect)
		lb_count_connect(&key, b, proto == IPPROTO_TCP);
	return 1;
}

/* getpeername4 / recvmsg4: a backend's address back to the VIP:port the socket asked for. */
static __always_inline void lb_sock_reverse(struct bpf_sock_addr *ctx)
{
	struct weft_lb_sock_key sk = {};
	struct weft_lb_sock_value *sv;
	__u32 proto = ctx->protocol;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return;
	sk.cookie = bpf_get_socket_cookie(ctx);
	sk.backend = ctx->user_ip4;
	sk.bport = (__u16)ctx->user_port;
	sk.proto = (__u8)proto;
	sv = bpf_map_lookup_elem(&weft_lb_socks, &sk);
	if (!sv)
		return;
	ctx->user_ip4 = sv->vip;
	ctx->user_port = sv->port;
}

#endif /* WEFT_LB_H */
