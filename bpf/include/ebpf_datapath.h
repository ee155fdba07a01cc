/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * Optional header for ebpf.datapath plugins.
 *
 * A plugin needs only the kernel's and libbpf's headers: a hook function is an
 * ordinary global function,
 *
 *     int my_pre(struct __sk_buff *ctx);                (pre,  tc)
 *     int my_pre(struct xdp_md *ctx);                   (pre,  xdp)
 *     int my_post(struct __sk_buff *ctx, int verdict);  (post, tc)
 *     int my_post(struct xdp_md *ctx, int verdict);     (post, xdp)
 *
 * that returns DP_CONTINUE (-1) to pass the packet on, or anything else to end
 * the chain with that verdict. This header only gives those values names and
 * adds small readers for what the dispatcher passes along: the Cilium
 * identity, and the packet's headers parsed once for the chain (struct dp_pkt,
 * below).
 */
#ifndef EBPF_DATAPATH_H
#define EBPF_DATAPATH_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* -1 is TC_ACT_UNSPEC and TCX_NEXT too: "not my decision". */
#define DP_CONTINUE (-1)

/* Keep a hook function a real, separately verified function in every mode. */
#define DP_HOOK __attribute__((noinline))

/*
 * At a Cilium custom-call slot, Cilium leaves `verdict << 24 | identity` in
 * skb->cb[4] (CB_CUSTOM_CALLS). The dispatcher keeps that word there for the
 * whole chain; at every other tc attach point it sets the word to 0 for the
 * chain and puts the original back before it returns, so the readers below
 * give identity 0 outside Cilium.
 */
#define DP_CB_CILIUM_CUSTOM 4

static __always_inline __u32 dp_remote_identity(const struct __sk_buff *ctx)
{
	return ctx->cb[DP_CB_CILIUM_CUSTOM] & 0xffffff;
}

/* The verdict Cilium decided before it tail-called the slot (0 elsewhere). */
static __always_inline int dp_cilium_verdict(const struct __sk_buff *ctx)
{
	return (int)(ctx->cb[DP_CB_CILIUM_CUSTOM] >> 24);
}

/*
 * One parse for the whole chain. A hook (or main) that declares a second
 * parameter `const struct dp_pkt *pkt`,
 *
 *     int my_pre(struct __sk_buff *ctx, const struct dp_pkt *pkt);
 *     int my_post(struct xdp_md *ctx, const struct dp_pkt *pkt, int verdict);
 *
 * gets the packet's headers as the dispatcher parsed them, once per packet,
 * before the first hook: Ethernet with up to two VLAN tags, IPv4 (options
 * skipped) or IPv6 (no extension headers), and TCP/UDP ports. A field the
 * packet does not have (or that is not in the linear data) reads 0. Hooks
 * without the parameter keep working and cost nothing more. A plugin that
 * changes the packet's headers makes the parse stale for the hooks after it.
 *
 * The parser is written here without kernel headers, so it also builds with a
 * vmlinux.h; plugins may call dp_parse() themselves.
 */
#define DP_ETH_P_IP	0x0800
#define DP_ETH_P_IPV6	0x86DD
#define DP_ETH_P_8021Q	0x8100
#define DP_ETH_P_8021AD	0x88A8
#define DP_IPPROTO_TCP	6
#define DP_IPPROTO_UDP	17

/* dp_pkt.flags */
#define DP_PKT_L3	0x01	/* l3_proto is IPv4 or IPv6 and its addresses are set */
#define DP_PKT_L4	0x02	/* l4_off and l4_proto are set */
#define DP_PKT_PORTS	0x04	/* sport and dport are set (TCP or UDP) */
#define DP_PKT_FRAGMENT	0x08	/* an IPv4 fragment; a later one has no L4 */

struct dp_pkt {
	__u16 l3_off;		/* offset of the network header */
	__u16 l4_off;		/* offset of the transport header (DP_PKT_L4) */
	__u16 l3_proto;		/* EtherType after VLAN tags, host order */
	__u8 l4_proto;		/* IPPROTO_* (DP_PKT_L4) */
	__u8 flags;		/* DP_PKT_* */
	__be16 sport;		/* network order (DP_PKT_PORTS) */
	__be16 dport;
	__u8 saddr[16];		/* IPv4: the first 4 bytes; network order */
	__u8 daddr[16];
};

static __always_inline __u16 dp_be16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

/* Parse the headers between data and data_end into pkt. */
static __always_inline void dp_parse(void *data, void *data_end, struct dp_pkt *pkt)
{
	__u8 *p = data;
	__u32 off = 14;
	__u16 proto;
	__u8 l4 = 0;

	__builtin_memset(pkt, 0, sizeof(*pkt));
	if ((void *)(p + 14) > data_end)
		return;
	proto = dp_be16(p + 12);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != DP_ETH_P_8021Q && proto != DP_ETH_P_8021AD)
			break;
		if ((void *)(p + off + 4) > data_end)
			return;
		proto = dp_be16(p + off + 2);
		off += 4;
	}
	pkt->l3_off = off;
	pkt->l3_proto = proto;
	if (proto == DP_ETH_P_IP) {
		__u8 *ip = p + off;
		__u32 ihl;

		if ((void *)(ip + 20) > data_end)
			return;
		ihl = (ip[0] & 0x0f) * 4;
		if (ihl < 20)
			return;
		__builtin_memcpy(pkt->saddr, ip + 12, 4);
		__builtin_memcpy(pkt->daddr, ip + 16, 4);
		pkt->flags = DP_PKT_L3;
		if (dp_be16(ip + 6) & 0x3fff) {		/* MF or a fragment offset */
			pkt->flags |= DP_PKT_FRAGMENT;
			if (dp_be16(ip + 6) & 0x1fff)
				return;
		}
		l4 = ip[9];
		off += ihl;
	} else if (proto == DP_ETH_P_IPV6) {
		__u8 *ip6 = p + off;

		if ((void *)(ip6 + 40) > data_end)
			return;
		__builtin_memcpy(pkt->saddr, ip6 + 8, 16);
		__builtin_memcpy(pkt->daddr, ip6 + 24, 16);
		pkt->flags = DP_PKT_L3;
		l4 = ip6[6];
		off += 40;
	} else {
		return;
	}
	pkt->l4_off = off;
	pkt->l4_proto = l4;
	pkt->flags |= DP_PKT_L4;
	if (l4 == DP_IPPROTO_TCP || l4 == DP_IPPROTO_UDP) {
		__u8 *ports = p + (off & 0xff);

		if ((void *)(ports + 4) > data_end)
			return;
		__builtin_memcpy(&pkt->sport, ports, 2);
		__builtin_memcpy(&pkt->dport, ports + 2, 2);
		pkt->flags |= DP_PKT_PORTS;
	}
}

#endif /* EBPF_DATAPATH_H */
