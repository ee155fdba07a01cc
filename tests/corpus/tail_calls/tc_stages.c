// SPDX-License-Identifier: GPL-3.0-or-later
/* A tc program split into stages joined by tail calls, the way larger
 * programs outgrow one verifier budget: the entry program classifies the
 * packet and jumps through a prog array to a stage, each stage is a program
 * of its own under SEC("tc") and returns the verdict. The prog array is filled
 * by the loader from the declaration (.values), not by user space code. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DENIED_PORT 7777

enum stage {
	STAGE_DENY = 0,
	STAGE_ACCEPT = 1,
	STAGE_MAX,
};

/* Index = stage that ran; STAGE_MAX counts packets the entry program kept
 * because a tail call did not happen (empty slot). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAGE_MAX + 1);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&stage_hits, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("tc")
int stage_deny(struct __sk_buff *skb)
{
	hit(STAGE_DENY);
	return TC_ACT_SHOT;
}

SEC("tc")
int stage_accept(struct __sk_buff *skb)
{
	hit(STAGE_ACCEPT);
	return TC_ACT_OK;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, STAGE_MAX);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} stages SEC(".maps") = {
	.values = {
		[STAGE_DENY] = (void *)&stage_deny,
		[STAGE_ACCEPT] = (void *)&stage_accept,
	},
};

SEC("tc")
int tc_classify(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct udphdr *udph = (void *)(iph + 1);
	__u32 next;

	if ((void *)(udph + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || iph->ihl != 5 || iph->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	next = udph->dest == bpf_htons(DENIED_PORT) ? STAGE_DENY : STAGE_ACCEPT;
	bpf_tail_call(skb, &stages, next);
	/* Only reached when the slot is empty. */
	hit(STAGE_MAX);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
