/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Reading headers with ctx_load_bytes() into stack copies rather than through
 * direct packet pointers: no bounds to prove, and it works wherever the
 * context header maps ctx_load_bytes. */
#ifndef CORPUS_LIB_L4_H
#define CORPUS_LIB_L4_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/api.h>

#include "drop.h"

/* The UDP destination port (host order) of the IPv4 packet at l3_off:
 * 0 and *dport set, REASON_NOT_UDP for other protocols, or -DROP_INVALID. */
static __always_inline int ipv4_udp_dport(struct __ctx_buff *ctx, __u32 l3_off, __u16 *dport)
{
	struct iphdr ip4;
	__be16 port;

	if (ctx_load_bytes(ctx, l3_off, &ip4, sizeof(ip4)) < 0)
		return -DROP_INVALID;
	if (ip4.protocol != IPPROTO_UDP)
		return REASON_NOT_UDP;
	if (unlikely(ip4.ihl < 5))
		return -DROP_INVALID;
	if (ctx_load_bytes(ctx, l3_off + ip4.ihl * 4 + offsetof(struct udphdr, dest), &port, sizeof(port)) < 0)
		return -DROP_INVALID;
	*dport = bpf_ntohs(port);
	return 0;
}

#endif
