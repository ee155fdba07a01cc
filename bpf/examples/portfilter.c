// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * portfilter: drops UDP and TCP packets to the destination ports listed in its
 * `blocked_ports` map (key: port in host byte order, value: any byte), IPv4 and
 * IPv6; passes everything else on. Counts what it dropped per port.
 *
 *   bpftool map update pinned .../plugins/<name>/maps/blocked_ports \
 *       key 0x61 0x1e value 1        # 7777, little-endian host
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "ebpf_datapath.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} blocked_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u64);
} dropped SEC(".maps");

/* Destination port of a UDP or TCP packet in [data, data_end), or 0. */
static __always_inline __u16 dest_port(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	__u8 proto;
	void *l4;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl != 5)
			return 0;
		proto = ip->protocol;
		l4 = ip + 1;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		proto = ip6->nexthdr;
		l4 = ip6 + 1;
	} else {
		return 0;
	}
	/* The destination port sits at the same offset in UDP and TCP. */
	if (proto == IPPROTO_UDP && l4 + sizeof(struct udphdr) <= data_end)
		return bpf_ntohs(((struct udphdr *)l4)->dest);
	if (proto == IPPROTO_TCP && l4 + sizeof(struct tcphdr) <= data_end)
		return bpf_ntohs(((struct tcphdr *)l4)->dest);
	return 0;
}

static __always_inline int blocked(__u16 port)
{
	__u64 zero = 0, *n;

	if (!port || !bpf_map_lookup_elem(&blocked_ports, &port))
		return 0;
	n = bpf_map_lookup_elem(&dropped, &port);
	if (!n) {
		/* Create the slot at zero, then count through the lookup, so a
		 * first packet racing on another CPU is never lost. */
		bpf_map_update_elem(&dropped, &port, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&dropped, &port);
	}
	if (n)
		*n += 1;
	return 1;
}

DP_HOOK int filter(struct __sk_buff *ctx)
{
	/* Headers may sit in the non-linear part of the skb; pull them in. */
	bpf_skb_pull_data(ctx, sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct tcphdr));
	if (blocked(dest_port((void *)(long)ctx->data, (void *)(long)ctx->data_end)))
		return TC_ACT_SHOT;
	return DP_CONTINUE;
}

DP_HOOK int filter_xdp(struct xdp_md *ctx)
{
	if (blocked(dest_port((void *)(long)ctx->data, (void *)(long)ctx->data_end)))
		return XDP_DROP;
	return DP_CONTINUE;
}

char LICENSE[] SEC("license") = "GPL";
