// SPDX-License-Identifier: GPL-3.0-or-later
/* counter.c with its map declared bigger: installed under the name of a
 * plugin built from counter.c, its map cannot reuse the pinned one. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

__attribute__((noinline)) int count(struct __sk_buff *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
