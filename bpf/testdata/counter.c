// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin: counts packets and bytes that reach it, passes them on. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2); /* 0: packets, 1: bytes */
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void add(__u32 key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &key);

	if (v)
		__sync_fetch_and_add(v, n);
}

__attribute__((noinline)) int count(struct __sk_buff *ctx)
{
	add(0, 1);
	add(1, ctx->len);
	return -1;
}

__attribute__((noinline)) int count_xdp(struct xdp_md *ctx)
{
	add(0, 1);
	add(1, ctx->data_end - ctx->data);
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
