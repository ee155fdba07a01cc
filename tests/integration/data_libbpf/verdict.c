// SPDX-License-Identifier: GPL-2.0-or-later
// tc program for test_libbpf: drop UDP to port 9 (discard), pass the rest,
// and count packets per UDP destination port and per CPU.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
} dp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} dp_runs SEC(".maps");

__u64 dp_last_len = 0;

SEC("tc")
int dp_verdict(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 zero = 0, port;
	__u64 one = 1, *val;

	val = bpf_map_lookup_elem(&dp_runs, &zero);
	if (val)
		*val += 1;
	dp_last_len = skb->len;

	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	port = bpf_ntohs(udp->dest);
	val = bpf_map_lookup_elem(&dp_ports, &port);
	if (val)
		__sync_fetch_and_add(val, 1);
	else
		bpf_map_update_elem(&dp_ports, &port, &one, BPF_NOEXIST);
	return port == 9 ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
