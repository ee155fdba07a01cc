// SPDX-License-Identifier: GPL-2.0-or-later
// Reads packet data without a bounds check: the verifier must refuse it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int dp_unsafe(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;

	return *(__u32 *)(data + 14);
}

char _license[] SEC("license") = "GPL";
