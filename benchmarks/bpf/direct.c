// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * Benchmark baselines, no dispatcher: `direct` passes every packet; `direct_cb`
 * also does what an empty dispatcher does to skb->cb[4] (save, zero, restore),
 * to tell that cost apart from the rest of the dispatcher's.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int direct(struct __sk_buff *ctx)
{
	return TC_ACT_OK;
}

SEC("tc")
int direct_cb(struct __sk_buff *ctx)
{
	__u32 saved = ctx->cb[4];

	ctx->cb[4] = 0;
	asm volatile("" ::: "memory");
	ctx->cb[4] = saved;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
