# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-plugin statistics of a dispatcher (``stats: true``): the C the generated
dispatcher counts with, and reading the counts back (datapath_info).

The dispatcher, not the plugins, counts: after each call of a hook or main it
adds one to that call's bucket for the verdict returned: ``continue``
(DP_CONTINUE, -1), a verdict 0..15 (TC_ACT_*, XDP_*), or ``other``. Runs are the
sum of the buckets, so one increment per call is all the packet path pays (and a
compare or two to pick the bucket). The counts are per CPU (a
BPF_MAP_TYPE_PERCPU_ARRAY of one entry: no atomic operations) and belong to one
generation: the map is the dispatcher's own, pinned beside its program at
``dispatchers/<d>/gen-<N>/stats`` and released with it. Every mode counts the
same way, since the dispatcher makes the calls (freplace stubs and inlined
plugins included).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import struct

MAP_NAME = "dp_stats"
PIN_NAME = "stats"
VERDICT_BUCKETS = 16
# struct dp_hook_stats: cont, other, verdict[VERDICT_BUCKETS] (all __u64)
_HOOK_WORDS = 2 + VERDICT_BUCKETS

VERDICT_NAMES = {
    "tc": {0: "TC_ACT_OK", 1: "TC_ACT_RECLASSIFY", 2: "TC_ACT_SHOT", 3: "TC_ACT_PIPE", 4: "TC_ACT_STOLEN",
           5: "TC_ACT_QUEUED", 6: "TC_ACT_REPEAT", 7: "TC_ACT_REDIRECT", 8: "TC_ACT_TRAP"},
    "xdp": {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"},
}
VERDICT_NAMES["cilium"] = VERDICT_NAMES["tc"]


def c_declarations(calls):
    """The C lines declaring the statistics map for `calls` counted calls."""
    return [
        "#define DP_STATS_VERDICTS %d" % VERDICT_BUCKETS,
        "struct dp_hook_stats {",
        "\t__u64 cont;\t/* DP_CONTINUE */",
        "\t__u64 other;\t/* a verdict outside 0..DP_STATS_VERDICTS-1 */",
        "\t__u64 verdict[DP_STATS_VERDICTS];",
        "};",
        "struct dp_stats {",
        "\tstruct dp_hook_stats hook[%d];" % max(calls, 1),
        "};",
        "struct {",
        "\t__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);",
        "\t__uint(max_entries, 1);",
        "\t__type(key, __u32);",
        "\t__type(value, struct dp_stats);",
        "} %s SEC(\".maps\");" % MAP_NAME,
        "",
        "static __always_inline void dp_count(struct dp_hook_stats *s, int verdict)",
        "{",
        "\tif (verdict == DP_CONTINUE)",
        "\t\ts->cont++;",
        "\telse if ((__u32)verdict < DP_STATS_VERDICTS)",
        "\t\ts->verdict[verdict]++;",
        "\telse",
        "\t\ts->other++;",
        "}",
        "",
    ]


def c_lookup(fallback):
    """The C lines at the start of the dispatcher that find this CPU's counts.
    A one-entry array always has key 0: the fallback return is for the verifier."""
    return [
        "\t__u32 dp_zero = 0;",
        "\tstruct dp_stats *dp_st = bpf_map_lookup_elem(&%s, &dp_zero);" % MAP_NAME,
        "",
        "\tif (!dp_st)",
        "\t\treturn %s;" % fallback,
    ]


def c_count(index, var):
    return "\tdp_count(&dp_st->hook[%d], %s);" % (index, var)


def counted_calls(chain, main):
    """[(hook, plugin, function)] in the order the dispatcher counts them:
    pre hooks, main, post hooks. chain: a schema.Chain; main: a FunctionRef or None."""
    calls = [("pre", p, f) for p, f in chain.pre]
    if main is not None:
        calls.append(("main", main.plugin, main.function))
    calls += [("post", p, f) for p, f in chain.post]
    return calls


def decode(family, calls, per_cpu_values):
    """Per-plugin statistics from the per-CPU values (bytes each) of the map's
    one entry: [{hook, plugin, function, runs, continue, verdicts, other,
    runs_per_cpu}], summed over CPUs."""
    names = VERDICT_NAMES[family]
    out = []
    words = [struct.unpack("<%dQ" % (len(raw) // 8), raw) for raw in per_cpu_values]
    for index, (hook, plugin, function) in enumerate(calls):
        base = index * _HOOK_WORDS
        cont = other = 0
        verdicts = {}
        runs_per_cpu = []
        for cpu_words in words:
            mine = cpu_words[base:base + _HOOK_WORDS]
            if len(mine) < _HOOK_WORDS:
                break
            cont += mine[0]
            other += mine[1]
            for value, count in enumerate(mine[2:]):
                if count:
                    key = names.get(value, str(value))
                    verdicts[key] = verdicts.get(key, 0) + count
            runs_per_cpu.append(sum(mine))
        out.append({"hook": hook, "plugin": plugin, "function": function, "runs": sum(runs_per_cpu),
                    "continue": cont, "verdicts": verdicts, "other": other, "runs_per_cpu": runs_per_cpu})
    return out


def read(path, family, calls):
    """The statistics pinned at path (a generation's stats map), decoded."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps, libbpf
    fd = libbpf.obj_get(path)
    try:
        info = libbpf.map_info(fd)
        values = bpf_maps.map_lookup_percpu(fd, struct.pack("<I", 0), info.value_size)
    finally:
        libbpf.close_fd(fd)
    return decode(family, calls, values or [])
