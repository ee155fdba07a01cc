// SPDX-License-Identifier: GPL-3.0-or-later
/* Test plugin: an entry program that compiles but the verifier refuses (a
 * packet read without a bounds check), beside a hook function that is fine. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

__attribute__((noinline)) int fine(struct __sk_buff *ctx)
{
	return -1;
}

SEC("tc")
int peek_entry(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;

	return data[20] == 0x11 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
