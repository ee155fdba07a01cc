// SPDX-License-Identifier: GPL-2.0-or-later
// freplace target: a tc program whose global function dp_stub can be replaced.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__attribute__((noinline)) int dp_stub(struct __sk_buff *skb)
{
	/* a no-op packet-changing call, so an extension may change packets */
	bpf_skb_change_head(skb, 0, 0);
	return skb->len > 0 ? 1 : 0;
}

SEC("tc")
int dp_target(struct __sk_buff *skb)
{
	return dp_stub(skb);
}

char _license[] SEC("license") = "GPL";
