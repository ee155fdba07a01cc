// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin with settings, written the way libbpf programs are: const
 * volatile globals (.rodata) a loader sets before load, an initialised global
 * (.data) and a zeroed one (.bss). datapath_plugin's `config` sets them; two
 * instances of this source with different settings act differently on the
 * same traffic. counts: 0 seen, 1 matched, 2 sum of data_step + bss_base, 3 dropped. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ebpf_datapath.h"

enum match_action {
	ACTION_COUNT = 0,
	ACTION_DROP = 1,
};

const volatile __u16 match_port = 0;		/* UDP destination port, host order; 0 matches nothing */
const volatile bool enabled = true;
const volatile enum match_action action = ACTION_COUNT;
const volatile __be32 only_from = 0;		/* IPv4 source; 0: any */
const volatile __u8 from_mac[6] = {};		/* Ethernet source; all zero: any */
__u32 data_step = 1;				/* .data: added to counts[2] per packet */
__u64 bss_base;					/* .bss: also added to counts[2] per packet */
static const volatile int hidden_setting = 1;	/* static: not settable */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void add(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &slot);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline bool mac_matches(const struct ethhdr *eth)
{
	bool any = true;
	int i;

	for (i = 0; i < 6; i++)
		if (from_mac[i])
			any = false;
	if (any)
		return true;
	for (i = 0; i < 6; i++)
		if (eth->h_source[i] != from_mac[i])
			return false;
	return true;
}

int configured_check(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	add(0, 1);
	add(2, data_step + bss_base);
	if (!enabled || hidden_setting == 0)
		return DP_CONTINUE;
	if ((void *)(udp + 1) > data_end)
		return DP_CONTINUE;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return DP_CONTINUE;
	if (!match_port || udp->dest != bpf_htons(match_port))
		return DP_CONTINUE;
	if (only_from && ip->saddr != only_from)
		return DP_CONTINUE;
	if (!mac_matches(eth))
		return DP_CONTINUE;
	add(1, 1);
	if (action == ACTION_DROP) {
		add(3, 1);
		return TC_ACT_SHOT;
	}
	return DP_CONTINUE;
}

char LICENSE[] SEC("license") = "GPL";
