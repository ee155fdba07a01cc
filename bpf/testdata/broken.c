// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin that does not compile: a missing semicolon on line 7. */
#include <linux/bpf.h>

__attribute__((noinline)) int oops(struct __sk_buff *ctx)
{
	return -1
}
