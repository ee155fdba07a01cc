// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * Benchmark: a chain of tail calls, the Cilium custom-call style of chaining.
 * `entry` tail-calls slot 0 of `hops`; every filled slot holds `hop`, which
 * tail-calls the next slot. The first empty slot ends the chain (the failed
 * tail call falls through to TC_ACT_OK). With N slots filled a packet takes N
 * tail calls. The slot number travels in cb[0], which the kernel's test run
 * starts at 0.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} hops SEC(".maps");

SEC("tc")
int entry(struct __sk_buff *ctx)
{
	ctx->cb[0] = 0;
	bpf_tail_call(ctx, &hops, 0);
	return TC_ACT_OK;
}

SEC("tc")
int hop(struct __sk_buff *ctx)
{
	__u32 next = ctx->cb[0] + 1;

	ctx->cb[0] = next;
	bpf_tail_call(ctx, &hops, next);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
