// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * pktcount: counts the packets and bytes that reach it and passes them on.
 *
 * A pre hook for tc (count) or XDP (count_xdp). Install the same source under
 * two plugin names to count before and after another plugin: each install gets
 * its own `counts` map, pinned at <bpffs_root>/plugins/<name>/maps/counts.
 *
 *   bpftool map dump pinned /sys/fs/bpf/ebpf-datapath/plugins/<name>/maps/counts
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "ebpf_datapath.h"

enum { PKTS = 0, BYTES = 1 };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); /* no atomics on the packet path */
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void add(__u32 key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &key);

	if (v)
		*v += n;
}

DP_HOOK int count(struct __sk_buff *ctx)
{
	add(PKTS, 1);
	add(BYTES, ctx->len);
	return DP_CONTINUE;
}

DP_HOOK int count_xdp(struct xdp_md *ctx)
{
	add(PKTS, 1);
	add(BYTES, ctx->data_end - ctx->data);
	return DP_CONTINUE;
}

char LICENSE[] SEC("license") = "GPL";
