// SPDX-License-Identifier: GPL-2.0-or-later
// freplace extension for fr_target.c's dp_stub.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("freplace/dp_stub")
int dp_ext(struct __sk_buff *skb)
{
	return 7;
}

char _license[] SEC("license") = "GPL";
