/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Everything a program of this layer includes after its context header. */
#ifndef CORPUS_BPF_API_H
#define CORPUS_BPF_API_H

#include <linux/types.h>
#include <linux/bpf.h>

#include "compiler.h"
#include "section.h"
#include "helpers.h"
#include "byteorder.h"
#include "maps.h"
#include "config.h"

#endif
