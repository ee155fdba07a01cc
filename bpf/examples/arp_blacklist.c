// SPDX-License-Identifier: GPL-3.0-or-later
/* Copyright (c) 2026, ebpf.datapath contributors */
/*
 * arp_blacklist: an XDP program that drops ARP packets whose *sender protocol
 * address* (SPA, the IPv4 address the sender claims as its own) is listed in
 * the map `arp_blacklist`, and counts the drops per address in `arp_drops`.
 *
 * Written as a standalone XDP program: one entry function under SEC("xdp")
 * returning XDP_DROP or XDP_PASS, its own Ethernet and ARP parsing, no
 * collection header. It runs unchanged attached alone (ip link set dev X xdp
 * obj arp_blacklist.o sec xdp) or as the main program of a dispatcher
 * (roles/arp_blacklist does that).
 *
 * Why the sender address and not the target address: the SPA is who speaks.
 * Matching it drops every ARP packet a listed address sends on this link,
 * requests and replies alike (gratuitous ARP included), so this host neither
 * answers a listed address nor learns, or is made to overwrite, a MAC for it
 * in its neighbour table. The flip side, by design: this host cannot resolve
 * a listed address either (the answer carries that SPA and is dropped). ARP
 * requests from other senders *asking for* a listed address (its address in
 * the target field) pass. List 0.0.0.0 to drop RFC 5227 address probes.
 *
 * Only ARP for IPv4 over Ethernet is looked at (hardware type 1, protocol
 * 0x0800, address lengths 6 and 4), untagged or behind up to two VLAN tags
 * (802.1Q / 802.1ad); every other frame passes untouched.
 *
 * Maps, pinned under <bpffs_root>/plugins/<plugin>/maps/ when installed with
 * ebpf.datapath.datapath_plugin:
 *   arp_blacklist  hash, key __be32 (the address, network byte order), value
 *                  bool: the presence of a key lists the address. Managed
 *                  from YAML with ebpf.datapath.datapath_map, keys as text:
 *                    entries: [{key: 192.0.2.7, value: true}]
 *   arp_drops      LRU per-CPU hash, same key, value __u64: ARP packets dropped
 *                  per sender address, written by this program only. Kept
 *                  apart from the list so that the list can be set exactly
 *                  (datapath_map exact: true) without touching the counts,
 *                  and a rerun that sets the same list changes nothing. An
 *                  address taken off the list keeps its count.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_LISTED 4096

/* ARP's fixed header and its body for IPv4 over Ethernet (RFC 826).
 * <linux/if_arp.h> has the fixed part only and pulls in netdevice headers;
 * the whole packet is spelt out here instead. Packed with 2-byte alignment:
 * the 4-byte addresses sit at 2-byte offsets, as does the header itself
 * behind a VLAN tag. */
#define ARP_HW_ETHER 1
struct arp_eth_ipv4 {
	__be16 hw_type;
	__be16 proto_type;
	__u8 hw_len;
	__u8 proto_len;
	__be16 opcode;
	__u8 sender_mac[ETH_ALEN];
	__be32 sender_ip;
	__u8 target_mac[ETH_ALEN];
	__be32 target_ip;
} __attribute__((packed, aligned(2)));

/* An 802.1Q / 802.1ad tag as it follows the MAC addresses. */
struct vlan_tag {
	__be16 tci;
	__be16 next_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_LISTED);
	__type(key, __be32);
	__type(value, bool);
} arp_blacklist SEC(".maps");

struct {
	/* Per CPU: no atomic add while a flood is being dropped. LRU: old
	 * addresses make room when more than MAX_LISTED ever dropped. */
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, MAX_LISTED);
	__type(key, __be32);
	__type(value, __u64);
} arp_drops SEC(".maps");

/* The ARP body of an IPv4-over-Ethernet ARP frame in [data, data_end), or
 * NULL for any other frame. */
static __always_inline struct arp_eth_ipv4 *arp_of(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	void *cursor = eth + 1;
	__be16 proto;
	struct arp_eth_ipv4 *arp;
	int i;

	if (cursor > data_end)
		return NULL;
	proto = eth->h_proto;
#pragma unroll
	for (i = 0; i < 2; i++) {
		struct vlan_tag *tag = cursor;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(tag + 1) > data_end)
			return NULL;
		proto = tag->next_proto;
		cursor = tag + 1;
	}
	if (proto != bpf_htons(ETH_P_ARP))
		return NULL;
	arp = cursor;
	if ((void *)(arp + 1) > data_end)
		return NULL;
	if (arp->hw_type != bpf_htons(ARP_HW_ETHER) || arp->proto_type != bpf_htons(ETH_P_IP) ||
	    arp->hw_len != ETH_ALEN || arp->proto_len != 4)
		return NULL;
	return arp;
}

static __always_inline void count_drop(__be32 *sender)
{
	__u64 first = 1, *n;

	n = bpf_map_lookup_elem(&arp_drops, sender);
	if (n) {
		*n += 1;
		return;
	}
	/* A first drop on this CPU: create the entry holding it. When another CPU
	 * created it meanwhile, count through the lookup instead. */
	if (bpf_map_update_elem(&arp_drops, sender, &first, BPF_NOEXIST) == 0)
		return;
	n = bpf_map_lookup_elem(&arp_drops, sender);
	if (n)
		*n += 1;
}

SEC("xdp")
int xdp_arp_blacklist(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct arp_eth_ipv4 *arp;
	__be32 sender;

	arp = arp_of(data, data_end);
	if (!arp)
		return XDP_PASS;
	/* Copied to the stack: a map key cannot point into the packet. */
	__builtin_memcpy(&sender, &arp->sender_ip, sizeof(sender));
	if (!bpf_map_lookup_elem(&arp_blacklist, &sender))
		return XDP_PASS;
	count_drop(&sender);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
