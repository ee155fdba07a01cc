// SPDX-License-Identifier: GPL-3.0-or-later
/* Drops UDP to one port; the port is a setting (const volatile, set before
 * load by a loader, here left at its default). */
#include "common.h"

const volatile __u16 blocked_port = 7777;

SEC("xdp")
int xdp_port_filter_func(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	__u32 action = XDP_PASS;

	if (parse_udp_dport(data, data_end) == blocked_port)
		action = XDP_DROP;
	return xdp_stats_record_action(ctx, action);
}

char _license[] SEC("license") = "GPL";
