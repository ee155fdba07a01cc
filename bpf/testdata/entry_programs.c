// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin written the way published programs are: entry functions under
 * SEC("tc"), SEC("classifier"), SEC("tcx/ingress") and SEC("xdp") that return
 * their own verdicts (TC_ACT_OK / TC_ACT_SHOT, XDP_PASS / XDP_DROP), not the
 * collection's DP_CONTINUE. Each counts what it sees in its slot of `seen`:
 * 0 tc_drop_port, 1 cls_count, 2 tcx_count, 3 xdp_drop_port. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DROP_PORT 7777

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static __always_inline void see(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&seen, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int to_drop_port(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	return udp->dest == bpf_htons(DROP_PORT);
}

SEC("tc")
int tc_drop_port(struct __sk_buff *skb)
{
	see(0);
	bpf_skb_pull_data(skb, sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr));
	if (to_drop_port((void *)(long)skb->data, (void *)(long)skb->data_end))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("classifier")
int cls_count(struct __sk_buff *skb)
{
	see(1);
	return TC_ACT_OK;
}

SEC("tcx/ingress")
int tcx_count(struct __sk_buff *skb)
{
	see(2);
	return TC_ACT_OK;
}

SEC("xdp")
int xdp_drop_port(struct xdp_md *ctx)
{
	see(3);
	if (to_drop_port((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
