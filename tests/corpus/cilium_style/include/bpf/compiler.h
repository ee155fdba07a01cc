/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Compiler attributes of the macro layer. Programs never spell an attribute
 * out: they say __section(...), __always_inline, likely(...). */
#ifndef CORPUS_BPF_COMPILER_H
#define CORPUS_BPF_COMPILER_H

/* Put a symbol in an ELF section, and keep it even when nothing refers to it
 * (entry points and the license are found by the loader, not by calls). */
#define __section(NAME)		__attribute__((section(NAME), used))

/* The kernel's uapi stddef.h has its own, weaker, definition. */
#undef __always_inline
#define __always_inline		inline __attribute__((always_inline))

#define __maybe_unused		__attribute__((unused))
#define __packed		__attribute__((packed))

#define likely(COND)		__builtin_expect(!!(COND), 1)
#define unlikely(COND)		__builtin_expect(!!(COND), 0)

#ifndef offsetof
# define offsetof(TYPE, FIELD)	__builtin_offsetof(TYPE, FIELD)
#endif

#define __stringify_1(X)	#X
#define __stringify(X)		__stringify_1(X)

#endif
