/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Helpers are declared here, not taken from libbpf: each one is a constant
 * function pointer holding the helper's number, which clang turns into a BPF
 * call instruction. Names drop the bpf_ prefix. */
#ifndef CORPUS_BPF_HELPERS_H
#define CORPUS_BPF_HELPERS_H

#include <linux/bpf.h>

#include "compiler.h"

#define BPF_HELPER(RET, NAME, ...)					\
	static RET (*NAME)(__VA_ARGS__) __maybe_unused = (void *)BPF_FUNC_##NAME

BPF_HELPER(void *, map_lookup_elem, const void *map, const void *key);
BPF_HELPER(long, map_update_elem, const void *map, const void *key, const void *value, __u64 flags);
BPF_HELPER(__u32, get_smp_processor_id, void);

#endif
