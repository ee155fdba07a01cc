// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
//
// VM smoke test: a tc classifier that counts the packets it sees, so the
// smoke test can prove it is attached (the count grows when ping crosses).
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} smoke_hits SEC(".maps");

SEC("tc")
int smoke_count(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *hits = bpf_map_lookup_elem(&smoke_hits, &key);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
