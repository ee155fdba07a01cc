// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * Benchmark: the work of a chain of eight count.c plugins written by hand as one
 * program. `merged` is what someone merging them would write: parse the header
 * once, then bump the counter in each of the eight plugins' maps.
 * `concatenated` is each plugin's code one after the other (each parses the
 * header again, as the plugins do), which is what inlining the chain gives.
 * The inline build of the chain is compared with both.
 *
 * `merged_parsed` is the same for eight parsed_count.c plugins, which take
 * the chain's one parse (struct dp_pkt): the hand-merged program parses once
 * with the same dp_parse() the dispatcher runs, then counts the transport
 * protocol in each of the eight maps. `merged_parsed_cb` adds what a tc
 * dispatcher does around its chain when a plugin of it can reach cb[4] (saved,
 * zeroed, restored), to tell what that handling costs.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "ebpf_datapath.h"

#define COUNTS(n)                                      \
	struct {                                       \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, 256);              \
		__type(key, __u32);                    \
		__type(value, __u64);                  \
	} counts##n SEC(".maps")

COUNTS(0);
COUNTS(1);
COUNTS(2);
COUNTS(3);
COUNTS(4);
COUNTS(5);
COUNTS(6);
COUNTS(7);

static __always_inline void bump(void *map, __u32 *key)
{
	__u64 *value = bpf_map_lookup_elem(map, key);

	if (value)
		*value += 1;
}

SEC("tc")
int merged(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 key;

	if ((void *)(ip + 1) > end || eth->h_proto != __builtin_bswap16(ETH_P_IP))
		return TC_ACT_OK;
	key = ip->protocol;
	bump(&counts0, &key);
	bump(&counts1, &key);
	bump(&counts2, &key);
	bump(&counts3, &key);
	bump(&counts4, &key);
	bump(&counts5, &key);
	bump(&counts6, &key);
	bump(&counts7, &key);
	return TC_ACT_OK;
}

/* count.c's body, for one map */
static __always_inline void count_into(struct __sk_buff *ctx, void *map)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 key;

	if ((void *)(ip + 1) > end || eth->h_proto != __builtin_bswap16(ETH_P_IP))
		return;
	key = ip->protocol;
	bump(map, &key);
}

SEC("tc")
int concatenated(struct __sk_buff *ctx)
{
	count_into(ctx, &counts0);
	count_into(ctx, &counts1);
	count_into(ctx, &counts2);
	count_into(ctx, &counts3);
	count_into(ctx, &counts4);
	count_into(ctx, &counts5);
	count_into(ctx, &counts6);
	count_into(ctx, &counts7);
	return TC_ACT_OK;
}

SEC("tc")
int merged_parsed(struct __sk_buff *ctx)
{
	struct dp_pkt pkt;
	__u32 key;

	dp_parse((void *)(long)ctx->data, (void *)(long)ctx->data_end, &pkt);
	if (!(pkt.flags & DP_PKT_L4))
		return TC_ACT_OK;
	key = pkt.l4_proto;
	bump(&counts0, &key);
	bump(&counts1, &key);
	bump(&counts2, &key);
	bump(&counts3, &key);
	bump(&counts4, &key);
	bump(&counts5, &key);
	bump(&counts6, &key);
	bump(&counts7, &key);
	return TC_ACT_OK;
}

SEC("tc")
int merged_parsed_cb(struct __sk_buff *ctx)
{
	__u32 saved = ctx->cb[4];
	struct dp_pkt pkt;
	__u32 key;

	dp_parse((void *)(long)ctx->data, (void *)(long)ctx->data_end, &pkt);
	ctx->cb[4] = 0;
	if (pkt.flags & DP_PKT_L4) {
		key = pkt.l4_proto;
		bump(&counts0, &key);
		bump(&counts1, &key);
		bump(&counts2, &key);
		bump(&counts3, &key);
		bump(&counts4, &key);
		bump(&counts5, &key);
		bump(&counts6, &key);
		bump(&counts7, &key);
	}
	asm volatile("" : "+r"(ctx));
	ctx->cb[4] = saved;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
