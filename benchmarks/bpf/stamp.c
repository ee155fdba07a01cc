// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * Benchmark plugin for swaps under load: appends its id (STAMP_ID, given with
 * -D) to the stamp area of the benchmark's UDP datagrams, so the receiver sees
 * exactly which plugins, in which order, processed each packet.
 *
 * Datagram payload (benchmarks/native/udpgen.c): sequence number (8 bytes),
 * then the stamp area: a count, then up to STAMP_SLOTS ids. A full area is
 * marked 0xff (more plugins ran than any chain has). Only IPv4 UDP to
 * STAMP_PORT without IP options is touched; everything else passes untouched.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>

#ifndef STAMP_ID
#error "build with -DSTAMP_ID=<1..254>"
#endif
#ifndef STAMP_PORT
#define STAMP_PORT 9100
#endif
#define STAMP_SLOTS 7
#define STAMP_OFFSET (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) + 8)

#ifdef STAMP_COUNT
/* The soak (benchmarks/soak.py) builds with -DSTAMP_COUNT: a pinned map per
 * plugin, so every dispatcher program of the run can be told apart from the
 * machine's others by the maps it uses. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} stamped SEC(".maps");
#endif

__attribute__((noinline)) int stamp(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *area = data + STAMP_OFFSET;
	__u8 *slot;
	__u8 n;

#ifdef STAMP_REV
	/* A rebuild (soak): other code, the same behaviour; no packet is that long. */
	if (ctx->len == 100000 + STAMP_REV)
		return -1;
#endif
	if ((void *)(area + 1 + STAMP_SLOTS) > end)
		return -1;
	if (eth->h_proto != __builtin_bswap16(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
	    udp->dest != __builtin_bswap16(STAMP_PORT))
		return -1;
	n = area[0];
	if (n >= STAMP_SLOTS) {
		area[0] = 0xff;
		return -1;
	}
	/* The verifier forgets the packet range of a pointer moved by a variable:
	 * check the slot itself, and keep clang from folding that check away. */
	slot = area + 1 + n;
	asm volatile("" : "+r"(slot));
	if ((void *)(slot + 1) > end)
		return -1;
	*slot = STAMP_ID;
	area[0] = n + 1;
#ifdef STAMP_COUNT
	{
		__u32 key = 0;
		__u64 *v = bpf_map_lookup_elem(&stamped, &key);

		if (v)
			__sync_fetch_and_add(v, 1);
	}
#endif
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
