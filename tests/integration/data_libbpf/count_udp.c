// SPDX-License-Identifier: GPL-2.0-or-later
// Programs that count UDP packets to port 7777 into dp_counts: the tcx
// programs dp_count_a (slot 0) and dp_count_b (slot 1) return TCX_NEXT so
// every program attached after them still runs; dp_xdp_count uses slot 2.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DP_PORT 7777
#define DP_NEXT (-1) /* TCX_NEXT == TC_ACT_UNSPEC */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 3);
} dp_counts SEC(".maps");

static __always_inline int count_into(void *data, void *data_end, __u32 slot)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	__u64 *val;

	if ((void *)(udp + 1) > data_end)
		return DP_NEXT;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return DP_NEXT;
	if (udp->dest != bpf_htons(DP_PORT))
		return DP_NEXT;
	val = bpf_map_lookup_elem(&dp_counts, &slot);
	if (val)
		__sync_fetch_and_add(val, 1);
	return DP_NEXT;
}

SEC("tc")
int dp_count_a(struct __sk_buff *skb)
{
	return count_into((void *)(long)skb->data, (void *)(long)skb->data_end, 0);
}

SEC("tc")
int dp_count_b(struct __sk_buff *skb)
{
	return count_into((void *)(long)skb->data, (void *)(long)skb->data_end, 1);
}

SEC("xdp")
int dp_xdp_count(struct xdp_md *ctx)
{
	count_into((void *)(long)ctx->data, (void *)(long)ctx->data_end, 2);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
