// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
//
// VM freplace proof: the target. Each entry program calls one global
// (never inlined) function that an extension program can replace.
//   stub      returns 1 and may not change packet data;
//   stub_pkt  returns 1 and makes a no-op packet-changing call, which is
//             what lets an extension that changes packet data replace it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__attribute__((noinline)) int stub(struct __sk_buff *skb)
{
	// volatile keeps clang from folding the constant into the caller
	volatile int ret = 1;

	return skb ? ret : 0;
}

__attribute__((noinline)) int stub_pkt(struct __sk_buff *skb)
{
	volatile int ret = 1;

	if (!skb)
		return 0;
	bpf_skb_change_head(skb, 0, 0);
	return ret;
}

SEC("tc")
int entry(struct __sk_buff *skb)
{
	return stub(skb);
}

SEC("tc")
int entry_pkt(struct __sk_buff *skb)
{
	return stub_pkt(skb);
}

char LICENSE[] SEC("license") = "GPL";
