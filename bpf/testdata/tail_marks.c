// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin whose tail-call target reads a setting: an entry program that
 * tail-calls slot 0 of a prog array initialised declaratively, where
 * stage_mark counts the packet in marks[mark]. Each dispatcher generation
 * loads its own copy of the stage with that generation's settings, so a
 * rollback must bring back the old stage with the old mark, not leave the
 * newest build's stage in place. marks[3]: the tail call failed. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 mark = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} marks SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&marks, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tc")
int stage_mark(struct __sk_buff *skb)
{
	count(mark < 3 ? mark : 0);
	return TC_ACT_OK;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int (void *));
} stage SEC(".maps") = {
	.values = {
		[0] = (void *)&stage_mark,
	},
};

SEC("tc")
int tc_jump(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &stage, 0);
	count(3);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
