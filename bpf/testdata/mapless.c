// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin without maps, for chains longer than the kernel's 64 maps per
 * program allow with counter.c: parses Ethernet, IPv4 or IPv6 and UDP, drops
 * UDP to port 7777 and passes the rest on. Its size and branches make it a
 * measure of how far the verifier follows a long chain. */
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

static __always_inline int to_drop_port(void *data, void *data_end)
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
	return udp->dest == bpf_htons(DROP_PORT);
}

__attribute__((noinline)) int check(struct __sk_buff *ctx)
{
	if (to_drop_port((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		return TC_ACT_SHOT;
	return -1;
}

__attribute__((noinline)) int check_xdp(struct xdp_md *ctx)
{
	if (to_drop_port((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		return XDP_DROP;
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
