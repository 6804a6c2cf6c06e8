// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weft_test_connect4: a test-only cgroup/connect4 program for libbpf-ts's cgroup attach tests
 * (bpf/src/cgroup.root.test.ts). Not part of the datapath: build.sh compiles progs/test/ into
 * dist/test/, apart from the entry objects. Denies (returns 0, connect() fails with EPERM) TCP
 * connects to port 7999 from the cgroup it is attached to; allows everything else.
 */
#include "lib/common.h"

#define WEFT_TEST_DENIED_PORT 7999

SEC("cgroup/connect4")
int weft_test_connect4(struct bpf_sock_addr *ctx)
{
	/* user_port holds the port in network order in its low 16 bits. */
	if (ctx->protocol == IPPROTO_TCP && ctx->user_port == bpf_htons(WEFT_TEST_DENIED_PORT))
		return 0;
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
