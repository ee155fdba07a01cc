/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The socket-buffer context: programs are written against struct __ctx_buff
 * and ctx_* accessors, and this header maps them onto __sk_buff, tc verdicts
 * and skb helpers. Include it first. */
#ifndef CORPUS_BPF_CTX_SKB_H
#define CORPUS_BPF_CTX_SKB_H

#include <linux/bpf.h>

#include "../compiler.h"
#include "../helpers.h"

#define __ctx_buff		__sk_buff
#define __section_entry		__section("tc")

#define CTX_ACT_OK		0	/* TC_ACT_OK */
#define CTX_ACT_DROP		2	/* TC_ACT_SHOT */

BPF_HELPER(long, skb_load_bytes, const struct __sk_buff *skb, __u32 offset, void *to, __u32 len);

#define ctx_load_bytes		skb_load_bytes

static __always_inline __u32 ctx_full_len(const struct __ctx_buff *ctx)
{
	return ctx->len;
}

static __always_inline __be16 ctx_get_protocol(const struct __ctx_buff *ctx)
{
	return (__be16)ctx->protocol;
}

#endif
