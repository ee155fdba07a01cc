// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin using the chain's one parse (ebpf_datapath.h's struct dp_pkt):
 * its hooks read the headers the dispatcher parsed instead of parsing again.
 * counts: 0 packets with a parse, 1 IPv4, 2 IPv6, 3 UDP to DROP_PORT, 4 the
 * last TCP/UDP destination port seen, 5 post hook runs with a parsed L4
 * header and the remote identity 0 (outside Cilium: all of them). Reading the
 * identity beside the parse keeps the tc dispatcher's cb[4] handling in an
 * inline chain of these hooks (see dispatcher.generate_source). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ebpf_datapath.h"

#define DROP_PORT 7777

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void add(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &slot);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline void set(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &slot);

	if (v)
		*v = n;
}

static __always_inline int look(const struct dp_pkt *pkt, int drop)
{
	if (!pkt)
		return DP_CONTINUE;
	add(0, 1);
	if (pkt->l3_proto == DP_ETH_P_IP && (pkt->flags & DP_PKT_L3))
		add(1, 1);
	if (pkt->l3_proto == DP_ETH_P_IPV6 && (pkt->flags & DP_PKT_L3))
		add(2, 1);
	if (pkt->flags & DP_PKT_PORTS)
		set(4, bpf_ntohs(pkt->dport));
	if (pkt->l4_proto == DP_IPPROTO_UDP && pkt->dport == bpf_htons(DROP_PORT)) {
		add(3, 1);
		return drop;
	}
	return DP_CONTINUE;
}

DP_HOOK int parsed_drop(struct __sk_buff *ctx, const struct dp_pkt *pkt)
{
	return look(pkt, 2 /* TC_ACT_SHOT */);
}

DP_HOOK int parsed_drop_xdp(struct xdp_md *ctx, const struct dp_pkt *pkt)
{
	return look(pkt, 1 /* XDP_DROP */);
}

DP_HOOK int parsed_post(struct __sk_buff *ctx, const struct dp_pkt *pkt, int verdict)
{
	if (pkt && (pkt->flags & DP_PKT_L4) && dp_remote_identity(ctx) == 0)
		add(5, 1);
	return DP_CONTINUE;
}

char LICENSE[] SEC("license") = "GPL";
