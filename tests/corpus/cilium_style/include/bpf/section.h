/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Where things go in the object. The program type of an entry point comes
 * from the context header (ctx/skb.h defines __section_entry), so one source
 * can be built for another attach point by changing one include. */
#ifndef CORPUS_BPF_SECTION_H
#define CORPUS_BPF_SECTION_H

#include "compiler.h"

#ifndef __section_entry
# error "include a context header (bpf/ctx/skb.h) before bpf/section.h"
#endif

#define __section_maps_btf	__section(".maps")
#define __section_license	__section("license")

#define BPF_LICENSE(TEXT)	char __license[] __section_license = TEXT

#endif
