// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
//
// VM freplace proof: the extensions (BPF_PROG_TYPE_EXT).
//   repl      replaces `stub` and returns 2;
//   repl_pkt  writes one packet byte (so it changes packet data) and
//             returns 3; the kernel must accept it for `stub_pkt` and
//             refuse it for `stub`.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("freplace/stub")
int repl(struct __sk_buff *skb)
{
	return 2;
}

SEC("freplace/stub_pkt")
int repl_pkt(struct __sk_buff *skb)
{
	__u8 mark = 0xee;

	bpf_skb_store_bytes(skb, 0, &mark, sizeof(mark), 0);
	return 3;
}

char LICENSE[] SEC("license") = "GPL";
