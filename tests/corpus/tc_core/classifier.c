// SPDX-License-Identifier: GPL-3.0-or-later
/* A CO-RE tc classifier in the style of libbpf-bootstrap: kernel types from a
 * generated vmlinux.h, constants the program defines itself, direct packet
 * access. Drops UDP to port 7777, counts packets per verdict. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define IPPROTO_UDP_NUM 17
#define BLOCKED_PORT 7777

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} verdict_counts SEC(".maps");

static __always_inline void bump(__u32 verdict)
{
	__u64 *n = bpf_map_lookup_elem(&verdict_counts, &verdict);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("tc")
int classify_udp(struct __sk_buff *ctx)
{
	void *data_end = (void *)(__u64)ctx->data_end;
	void *data = (void *)(__u64)ctx->data;
	struct ethhdr *l2 = data;
	struct iphdr *l3;
	struct udphdr *l4;

	if (ctx->protocol != bpf_htons(ETH_P_IP))
		goto pass;
	if ((void *)(l2 + 1) > data_end)
		goto pass;
	l3 = (struct iphdr *)(l2 + 1);
	if ((void *)(l3 + 1) > data_end || l3->ihl != 5 || l3->protocol != IPPROTO_UDP_NUM)
		goto pass;
	l4 = (struct udphdr *)(l3 + 1);
	if ((void *)(l4 + 1) > data_end)
		goto pass;
	if (l4->dest == bpf_htons(BLOCKED_PORT)) {
		bump(TC_ACT_SHOT);
		return TC_ACT_SHOT;
	}
pass:
	bump(TC_ACT_OK);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
