// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * Benchmark plugin using the chain's one parse (struct dp_pkt of
 * ebpf_datapath.h): count.c's work without count.c's own parse. It reads the
 * transport protocol the dispatcher parsed and counts it in a per-CPU array of
 * its own, then passes the packet on. Eight of these in a chain are compared
 * with `merged_parsed` in merged.c, the same work written by hand as one
 * program that parses once.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "ebpf_datapath.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

DP_HOOK int parsed_count(struct __sk_buff *ctx, const struct dp_pkt *pkt)
{
	__u32 key;
	__u64 *value;

	/* A global function's pointer argument may be NULL as far as the
	 * verifier knows (link mode); inlined, the test folds away. */
	if (!pkt || !(pkt->flags & DP_PKT_L4))
		return DP_CONTINUE;
	key = pkt->l4_proto;
	value = bpf_map_lookup_elem(&counts, &key);
	if (value)
		*value += 1;
	return DP_CONTINUE;
}

char LICENSE[] SEC("license") = "GPL";
