// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin whose function cannot be a hook: wrong parameter list. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__attribute__((noinline)) int two_ints(int a, int b)
{
	return a + b;
}

char LICENSE[] SEC("license") = "GPL";
