// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin that compiles but offers nothing to hook: its only function is
 * static, so no dispatcher can call it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((used, noinline)) int hidden(struct __sk_buff *ctx)
{
	return ctx->len > 0 ? -1 : 2;
}

char LICENSE[] SEC("license") = "GPL";
