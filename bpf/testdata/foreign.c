// SPDX-License-Identifier: GPL-3.0-or-later
/* Not a plugin: "someone else's" programs for the hardening tests. They hold
 * attach points (an XDP link, a cls_bpf filter, a Cilium custom-call slot)
 * that the collection must refuse to take over. Both programs pass every
 * packet, so they change no traffic. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} calls SEC(".maps");

SEC("tc")
int foreign_tc(struct __sk_buff *ctx)
{
	return TC_ACT_OK;
}

SEC("xdp")
int foreign_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
