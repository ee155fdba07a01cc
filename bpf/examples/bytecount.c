// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * bytecount: bytes per remote security identity.
 *
 * A post hook (it runs after the main verdict and never changes it) that adds
 * skb->len to bytecount_map[identity]. At a Cilium custom-call slot the identity
 * is the one Cilium put in cb[4]; at any other attach point it is 0, so the map
 * then counts all bytes under key 0.
 *
 *   bpftool map dump pinned /sys/fs/bpf/ebpf-datapath/plugins/bytecount/maps/bytecount_map
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "ebpf_datapath.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);   /* remote security identity */
	__type(value, __u64); /* bytes */
} bytecount_map SEC(".maps");

DP_HOOK int bytecount(struct __sk_buff *ctx, int verdict)
{
	__u32 identity = dp_remote_identity(ctx);
	__u64 zero = 0, *bytes;

	bytes = bpf_map_lookup_elem(&bytecount_map, &identity);
	if (!bytes) {
		/* Create the entry at zero, then add through the lookup: when two
		 * CPUs see a new identity at once, one create wins, the other's
		 * fails with EEXIST, and both adds land; no first update is lost. */
		bpf_map_update_elem(&bytecount_map, &identity, &zero, BPF_NOEXIST);
		bytes = bpf_map_lookup_elem(&bytecount_map, &identity);
		if (!bytes)
			return DP_CONTINUE; /* map full */
	}
	__sync_fetch_and_add(bytes, ctx->len);
	return DP_CONTINUE;
}

char LICENSE[] SEC("license") = "GPL";
