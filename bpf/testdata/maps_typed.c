// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin of datapath_map: maps with typed keys and values.
 *  flows:   hash, struct keys and values (ints, enum, MAC, IPv6, char[], bool)
 *  blocked: hash, UDP port -> bool; the plugin drops UDP to a blocked port
 *  settings: array of structs
 *  stats:   per-CPU array of counters (packets seen, packets dropped)
 *  prefixes: LPM trie (no batch operations: one entry at a time) */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum proto { PROTO_TCP = 6, PROTO_UDP = 17 };
enum action { ACT_PASS = 0, ACT_DROP = 1, ACT_REDIRECT = 2 };

struct flow_key {
	__be32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct flow_val {
	__u8 mac[6];
	__u16 weight;
	__s32 delta;
	enum action act;
	bool on;
	char tag[3];
	__u8 addr6[16];
	__u64 bytes;
};

struct setting {
	__s64 limit;
	enum proto proto;
	__u8 mac[6];
	__u16 ports[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, bool);
} blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct setting);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4);
	__type(value, __u32);
} prefixes SEC(".maps");

static __always_inline void bump(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &key);

	if (v)
		*v += 1;
}

__attribute__((noinline)) int filter(struct __sk_buff *ctx)
{
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;
	struct flow_key key = {};
	struct flow_val *flow;
	__u32 zero = 0;
	__u16 port;
	bool *block;

	bump(0);
	if (!bpf_map_lookup_elem(&settings, &zero))
		return -1;
	bpf_skb_pull_data(ctx, 14 + 20 + 8);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return -1;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return -1;
	port = bpf_ntohs(udp->dest);
	key.addr = ip->daddr;
	key.port = port;
	key.proto = PROTO_UDP;
	{
		struct lpm_v4 lpm = { .prefixlen = 32 };

		__builtin_memcpy(lpm.addr, &ip->daddr, 4);
		if (bpf_map_lookup_elem(&prefixes, &lpm))
			bump(0);
	}
	flow = bpf_map_lookup_elem(&flows, &key);
	if (flow)
		__sync_fetch_and_add(&flow->bytes, ctx->len);
	block = bpf_map_lookup_elem(&blocked, &port);
	if (block && *block) {
		bump(1);
		return TC_ACT_SHOT;
	}
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
