// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * Benchmark plugin that does a little real work: read the IPv4 protocol of the
 * packet and count it in a per-CPU array, then pass the packet on. Eight of these
 * in a chain are compared with merged.c, the same work written by hand as one
 * program.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

__attribute__((noinline)) int count(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 key;
	__u64 *value;

	if ((void *)(ip + 1) > end || eth->h_proto != __builtin_bswap16(ETH_P_IP))
		return -1;
	key = ip->protocol;
	value = bpf_map_lookup_elem(&counts, &key);
	if (value)
		*value += 1;
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
