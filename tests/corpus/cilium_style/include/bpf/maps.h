/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Map definitions in BTF form (the loader reads them from the .maps section
 * through the struct's member types), and one macro per map shape the
 * programs use, so a definition reads as one line. */
#ifndef CORPUS_BPF_MAPS_H
#define CORPUS_BPF_MAPS_H

#include "section.h"

#define __uint(NAME, VALUE)	int (*NAME)[VALUE]
#define __type(NAME, TYPE)	typeof(TYPE) *NAME

/* libbpf's pinning values: by name, under the loader's pin directory. */
#define PIN_NONE		0
#define PIN_BY_NAME		1

#define DEFINE_MAP(NAME, TYPE, KEY, VALUE, ENTRIES, PINNING)		\
	struct {							\
		__uint(type, TYPE);					\
		__type(key, KEY);					\
		__type(value, VALUE);					\
		__uint(max_entries, ENTRIES);				\
		__uint(pinning, PINNING);				\
	} NAME __section_maps_btf

#endif
