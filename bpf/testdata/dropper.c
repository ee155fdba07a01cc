// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin: drops UDP packets to port 7777 (IPv4 and IPv6), passes the rest. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DROP_PORT 7777

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* UDP destination port of an Ethernet frame, or 0. Works on any byte range
 * [data, data_end) that the verifier knows, so tc and xdp share it. */
static __always_inline __u16 udp_dport(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct udphdr *udp;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl != 5)
			return 0;
		proto = ip->protocol;
		udp = (void *)(ip + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		proto = ip6->nexthdr;
		udp = (void *)(ip6 + 1);
	} else {
		return 0;
	}
	if (proto != IPPROTO_UDP || (void *)(udp + 1) > data_end)
		return 0;
	return bpf_ntohs(udp->dest);
}

static __always_inline void note_drop(void)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&dropped, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

__attribute__((noinline)) int drop_port(struct __sk_buff *ctx)
{
	/* Headers may sit in the non-linear part; pull them in first. */
	bpf_skb_pull_data(ctx, 14 + 40 + 8);
	if (udp_dport((void *)(long)ctx->data, (void *)(long)ctx->data_end) == DROP_PORT) {
		note_drop();
		return TC_ACT_SHOT;
	}
	return -1;
}

__attribute__((noinline)) int drop_port_xdp(struct xdp_md *ctx)
{
	if (udp_dport((void *)(long)ctx->data, (void *)(long)ctx->data_end) == DROP_PORT) {
		note_drop();
		return XDP_DROP;
	}
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
