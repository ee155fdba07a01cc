// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/* Benchmark plugin: does nothing and passes the packet on (DP_CONTINUE). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__attribute__((noinline)) int noop(struct __sk_buff *ctx)
{
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
