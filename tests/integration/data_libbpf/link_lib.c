// SPDX-License-Identifier: GPL-2.0-or-later
// Half of a static-link test: defines the global function dp_mix.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__attribute__((noinline)) int dp_mix(__u32 len)
{
	return len * 2 + 1;
}

char _license[] SEC("license") = "GPL";
