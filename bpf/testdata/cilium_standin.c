// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * Stands in for Cilium (built with custom calls, up to 1.17) in tests, where
 * Cilium cannot run. It follows Cilium's convention for custom calls exactly:
 *
 *  - it decides a verdict and the remote security identity of the packet,
 *  - stores `verdict << 24 | identity & 0xffffff` in skb->cb[4] (CB_CUSTOM_CALLS),
 *  - tail-calls its endpoint's prog array `calls` (the test pins it as
 *    cilium_calls_custom_<endpoint>) at the key of the packet's family and the
 *    direction it is attached for: 0 IPv4 ingress, 1 IPv4 egress, 2 IPv6
 *    ingress, 3 IPv6 egress,
 *  - and, when the slot is empty (the tail call falls through), returns its
 *    verdict itself.
 *
 * identity4/identity6 map a remote (source at ingress, destination at egress)
 * address to an identity (default 2, Cilium's "world"); policy maps an identity
 * to a verdict (default TC_ACT_OK). config[0] is the direction: 0 ingress, 1 egress.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define WORLD_ID 2

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32); /* IPv4 address, network order */
	__type(value, __u32);
} identity4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct in6_addr);
	__type(value, __u32);
} identity6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);   /* identity */
	__type(value, __u32); /* verdict */
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

SEC("tc")
int cilium_standin(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0, identity = WORLD_ID, verdict = TC_ACT_OK, key, *found, *dir;
	int egress;

	dir = bpf_map_lookup_elem(&config, &zero);
	egress = dir && *dir;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 remote;

		if ((void *)(ip + 1) > data_end)
			return TC_ACT_OK;
		remote = egress ? ip->daddr : ip->saddr;
		found = bpf_map_lookup_elem(&identity4, &remote);
		key = egress ? 1 : 0;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct in6_addr remote;

		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		remote = egress ? ip6->daddr : ip6->saddr;
		found = bpf_map_lookup_elem(&identity6, &remote);
		key = egress ? 3 : 2;
	} else {
		return TC_ACT_OK; /* Cilium calls custom programs for IP only */
	}
	if (found)
		identity = *found;
	found = bpf_map_lookup_elem(&policy, &identity);
	if (found)
		verdict = *found;

	skb->cb[4] = (verdict & 0xff) << 24 | (identity & 0xffffff);
	bpf_tail_call(skb, &calls, key);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
