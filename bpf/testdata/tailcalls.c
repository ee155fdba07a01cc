// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin with tail calls, written the way published tc programs are: an
 * entry program that dispatches through a prog array initialised
 * declaratively, its stages under their own SEC(). UDP to drop_port goes to
 * stage 1 (drops), everything else to stage 0 (passes). counts: 0 entry ran,
 * 1 stage_pass ran, 2 stage_drop ran, 3 a tail call failed. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u16 drop_port = 7003;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tc")
int stage_pass(struct __sk_buff *skb)
{
	count(1);
	return TC_ACT_OK;
}

SEC("tc")
int stage_drop(struct __sk_buff *skb)
{
	count(2);
	return TC_ACT_SHOT;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} stages SEC(".maps") = {
	.values = {
		[0] = (void *)&stage_pass,
		[1] = (void *)&stage_drop,
	},
};

SEC("tc")
int tc_stages(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 stage = 0;

	count(0);
	if ((void *)(udp + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP) &&
	    ip->ihl == 5 && ip->protocol == IPPROTO_UDP && udp->dest == bpf_htons(drop_port))
		stage = 1;
	bpf_tail_call(skb, &stages, stage);
	count(3);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
