/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Per-CPU packet and byte counts per (reason, direction), in a map pinned by
 * name so that every program of the node shares it. */
#ifndef CORPUS_LIB_METRICS_H
#define CORPUS_LIB_METRICS_H

#include <bpf/api.h>

#include "drop.h"

struct metrics_key {
	__u8 reason;
	__u8 dir;
	__u16 pad;
};

struct metrics_value {
	__u64 count;
	__u64 bytes;
};

DEFINE_MAP(node_metrics, BPF_MAP_TYPE_PERCPU_HASH, struct metrics_key, struct metrics_value, 64, PIN_BY_NAME);

static __always_inline void update_metrics(__u64 bytes, __u8 dir, __u8 reason)
{
	struct metrics_key key = { .reason = reason, .dir = dir };
	struct metrics_value *entry, fresh = {};

	entry = map_lookup_elem(&node_metrics, &key);
	if (likely(entry)) {
		entry->count += 1;
		entry->bytes += bytes;
		return;
	}
	fresh.count = 1;
	fresh.bytes = bytes;
	map_update_elem(&node_metrics, &key, &fresh, BPF_ANY);
}

#endif
