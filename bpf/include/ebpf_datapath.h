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
 * adds small readers for what the dispatcher passes along.
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

#endif /* EBPF_DATAPATH_H */
