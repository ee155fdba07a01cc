// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin without maps whose hook function is long (about 2000
 * instructions of straight-line arithmetic, no branch but its last): a chain of
 * a few dozen is longer than a BPF jump can span at -mcpu=v3 (32767
 * instructions), which an inline chain needs from its first hook to its exit.
 * Passes every packet on (the mark it tests for is never set by the tests).
 * Its result depends on a helper call, so LLVM cannot share the work of two
 * copies inlined into one chain. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

__attribute__((noinline)) int churn(struct __sk_buff *ctx)
{
	/* A helper's result: every copy computes on its own (nothing to share). */
	__u32 h = bpf_get_prandom_u32();
	int i;

#pragma clang loop unroll(full)
	for (i = 0; i < 512; i++)
		h = (h ^ (h >> 3)) * 2654435761u + i;
	if (ctx->mark == 0x5eed && h == 0x2a)
		return TC_ACT_SHOT;
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
