/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared includes and small helpers for every Weft BPF program. No maps live here. */
#ifndef WEFT_COMMON_H
#define WEFT_COMMON_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Compile-time layout checks: the TypeScript codecs (bpf/src/layout.ts) assume these sizes. */
#define WEFT_ASSERT_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " must be " #size " bytes")

#endif /* WEFT_COMMON_H */
