/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Network byte order, folded to constants where the argument is one. */
#ifndef CORPUS_BPF_BYTEORDER_H
#define CORPUS_BPF_BYTEORDER_H

#include <linux/types.h>

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
# define bpf_htons(X)		((__be16)__builtin_bswap16(X))
# define bpf_ntohs(X)		((__u16)__builtin_bswap16(X))
#else
# define bpf_htons(X)		((__be16)(X))
# define bpf_ntohs(X)		((__u16)(X))
#endif

#endif
