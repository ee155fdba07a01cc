/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Load-time settings: read-only globals in their own .rodata.config section,
 * which a loader rewrites before load and the verifier then treats as
 * constants. Programs read them only through SETTING(name). */
#ifndef CORPUS_BPF_CONFIG_H
#define CORPUS_BPF_CONFIG_H

#include "compiler.h"

#define DECLARE_SETTING(TYPE, NAME, DEFAULT)				\
	volatile const TYPE __setting_##NAME __section(".rodata.config") = DEFAULT

#define SETTING(NAME)		__setting_##NAME

#endif
