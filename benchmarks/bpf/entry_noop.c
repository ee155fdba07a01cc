// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/* Benchmark plugin: noop.c written as published programs are, an entry program
 * under SEC("tc") that returns its own pass verdict (TC_ACT_OK) rather than the
 * collection's DP_CONTINUE. As a hook, the dispatcher maps that verdict (pass
 * goes on), which is what benchmarks/entry_hooks.py prices. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int entry_noop(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
