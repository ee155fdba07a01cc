// SPDX-License-Identifier: GPL-2.0-or-later
// Other half of the static-link test: calls dp_mix through an extern.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int dp_mix(__u32 len);

SEC("tc")
int dp_linked(struct __sk_buff *skb)
{
	return dp_mix(skb->len);
}
