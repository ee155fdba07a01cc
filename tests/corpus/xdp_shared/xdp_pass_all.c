// SPDX-License-Identifier: GPL-3.0-or-later
/* Passes everything and records it, with the same header and stats map. */
#include "common.h"

SEC("xdp")
int xdp_pass_func(struct xdp_md *ctx)
{
	return xdp_stats_record_action(ctx, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
