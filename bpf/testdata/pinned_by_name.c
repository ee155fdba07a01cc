// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin: a counter whose map is declared the way many published programs
 * declare theirs, pinned by name. libbpf would pin it at /sys/fs/bpf/<name>;
 * the collection must keep it under the plugin's directory in bpffs_root. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_counts SEC(".maps");

__attribute__((noinline)) int count_pinned(struct __sk_buff *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&pinned_counts, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
