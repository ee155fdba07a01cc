// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin that compiles but the verifier refuses: it reads packet data
 * without a bounds check. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__attribute__((noinline)) int peek(struct __sk_buff *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	if (data[40] == 0x42)
		return 2;
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
