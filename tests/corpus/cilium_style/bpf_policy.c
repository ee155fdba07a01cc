// SPDX-License-Identifier: GPL-3.0-or-later
/* An ingress policy program written against a Cilium-like macro layer
 * (include/bpf/: context abstraction, section and map macros, helpers
 * declared by the layer, settings in .rodata.config; lib/: inline helpers).
 * It drops IPv4 UDP to the port a setting names and forwards the rest,
 * counting both in the node's pinned metrics map. */
#include <bpf/ctx/skb.h>
#include <bpf/api.h>

#include "lib/drop.h"
#include "lib/l4.h"
#include "lib/metrics.h"

DECLARE_SETTING(__u16, deny_udp_port, 7777);

static __always_inline int forward(const struct __ctx_buff *ctx, __u8 reason)
{
	update_metrics(ctx_full_len(ctx), METRIC_INGRESS, reason);
	return CTX_ACT_OK;
}

static __always_inline int drop(const struct __ctx_buff *ctx, __u8 reason)
{
	update_metrics(ctx_full_len(ctx), METRIC_INGRESS, reason);
	return CTX_ACT_DROP;
}

__section_entry
int cil_policy_ingress(struct __ctx_buff *ctx)
{
	__u16 dport = 0;
	int ret;

	if (ctx_get_protocol(ctx) != bpf_htons(ETH_P_IP))
		return forward(ctx, REASON_NOT_UDP);
	ret = ipv4_udp_dport(ctx, ETH_HLEN, &dport);
	if (IS_ERR(ret))
		return drop(ctx, -ret);
	if (ret == REASON_NOT_UDP)
		return forward(ctx, REASON_NOT_UDP);
	if (dport == SETTING(deny_udp_port))
		return drop(ctx, DROP_POLICY_DENIED);
	return forward(ctx, REASON_FORWARDED);
}

BPF_LICENSE("Dual BSD/GPL");
