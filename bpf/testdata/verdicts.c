// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin: a post hook that counts the verdicts it sees (index = verdict,
 * 0..7; anything else in 7) and keeps them. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static __always_inline void note(int verdict)
{
	__u32 key = (verdict >= 0 && verdict < 7) ? (__u32)verdict : 7;
	__u64 *v = bpf_map_lookup_elem(&seen, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

__attribute__((noinline)) int record(struct __sk_buff *ctx, int verdict)
{
	note(verdict);
	return -1;
}

__attribute__((noinline)) int record_xdp(struct xdp_md *ctx, int verdict)
{
	note(verdict);
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
