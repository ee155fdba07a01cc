# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What per-plugin statistics cost (a dispatcher's ``stats: true``),
BPF_PROG_TEST_RUN, link mode and inline.

With statistics on, the dispatcher finds this CPU's counts once per packet
(one lookup in a one-entry per-CPU array) and after each call adds one to the
call's bucket for the verdict it returned (dispatcher_stats). For N no-op
plugins (benchmarks/bpf/noop.c) the dispatcher with and without statistics is
built the way each mode builds it (dispatcher.build_link; the collection's
inline_build.prepare_inline for inline) and the two are timed alternately,
each first in every other pair. Per plugin: the least-squares slope over N of
the medians of the per-pair differences (on - off); at N = 0 the difference is
the lookup alone. After the runs the counts are read back: each call counted
every packet as `continue`, so the cost measured is that of counting.
"""

import os
import statistics

from common import (BPF_DIR, cpu_mitigations, cpu_model, fit_slope, libbpf, log, paired, remove_bpffs_tree,
                    time_prog, udp_packet)
import inline_chain
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps, dispatcher_stats
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Chain

COUNTS = (0, 1, 8, 32, 64)
MODES = ("link", "inline")


def _build(eng, mode, n, chain, stats):
    if mode == "inline":
        return inline_chain.build(eng, "tc", chain, stats=stats)  # no-op hooks: the collection's build loads
    dname = "st%s%d" % ("on" if stats else "off", n)
    return disp_mod.build_link(eng.toolchain, eng.layout, dname, "tc", chain, None, eng.registry.plugins,
                               eng.layout.generation_prog_pin(dname, 1), stats=stats)


def _counted(built, chain):
    """Per counted call, the packets it counted as `continue` (all CPUs), and
    whether any verdict other than continue was counted."""
    stats_map = built.obj.map(dispatcher_stats.MAP_NAME)
    values = bpf_maps.map_lookup_percpu(stats_map.fd, b"\0\0\0\0", stats_map.value_size) or []
    decoded = dispatcher_stats.decode("tc", dispatcher_stats.counted_calls(Chain.from_json(chain), None), values)
    return [c["continue"] for c in decoded], any(c["verdicts"] or c["other"] for c in decoded)


def bench(scratch, repeat, runs):
    pkt = udp_packet()
    names = ["st%02d" % i for i in range(max(COUNTS))]
    out = {"counts": list(COUNTS), "repeat": repeat, "runs": runs, "cpu": cpu_model(),
           "cpu_mitigations": cpu_mitigations(), "stats_on_during_runs": False}
    for mode in MODES:
        out[mode] = {}
    with scratch.engine("stats") as eng:
        try:
            for name in names:
                eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "noop.c"))
            for n in COUNTS:
                chain = {"pre": [[name, "noop"] for name in names[:n]], "post": []}
                for mode in MODES:
                    off = on = None
                    try:
                        off = _build(eng, mode, n, chain, False)
                        on = _build(eng, mode, n, chain, True)
                        for built in (off, on):
                            time_prog(built.fd, pkt, 1000, 1)  # checks the verdict (pass) and warms up
                        pair = paired(off.fd, on.fd, pkt, repeat, runs, flip=True)
                        counted, other = _counted(on, chain)
                        entry = {"off_median_ns": statistics.median(pair["a_ns"]),
                                 "on_median_ns": statistics.median(pair["b_ns"]),
                                 "diff_median_ns": pair["diff_median_ns"],
                                 "diffs_ns": [b - a for a, b in zip(pair["a_ns"], pair["b_ns"])],
                                 "counted_min": min(counted) if counted else None,
                                 "counted_other_verdicts": other,
                                 "packets_run": repeat * runs}
                        for key, built in (("off", off), ("on", on)):
                            info = libbpf.prog_info(built.fd)
                            entry[key + "_insns"] = info.xlated_prog_len // 8
                            entry[key + "_jited_bytes"] = info.jited_prog_len
                            out["stats_on_during_runs"] |= info.run_cnt > 0
                        out[mode][str(n)] = entry
                    finally:
                        for built in (off, on):
                            if built is not None:
                                built.close()
                        if mode == "link":
                            for stats in ("on", "off"):
                                remove_bpffs_tree(eng.layout.dispatcher_dir("st%s%d" % (stats, n)))
                    log("stats, %s, %d plugins: off %.1f ns, on %.1f ns, on - off (paired) %+.1f ns"
                        % (mode, n, entry["off_median_ns"], entry["on_median_ns"], entry["diff_median_ns"]))
        finally:
            for name in names:
                eng.remove_plugin(name)
    xs = list(COUNTS)
    for mode in MODES:
        slope, intercept = fit_slope(xs, [out[mode][str(n)]["diff_median_ns"] for n in xs])
        insns, _i = fit_slope(xs, [out[mode][str(n)]["on_insns"] - out[mode][str(n)]["off_insns"] for n in xs])
        out[mode + "_fit"] = {"slope_ns": slope, "intercept_ns": intercept, "insns_per_plugin": insns}
        # Counting worked: every call counted at least every test-run packet as continue.
        out[mode + "_counted_every_packet"] = all(
            out[mode][str(n)]["counted_min"] is None or out[mode][str(n)]["counted_min"] >= repeat * runs
            for n in xs) and not any(out[mode][str(n)]["counted_other_verdicts"] for n in xs)
    log("statistics on: %.2f ns per plugin in link mode, %.2f ns inline (paired slopes); the lookup %.1f / %.1f ns"
        % (out["link_fit"]["slope_ns"], out["inline_fit"]["slope_ns"], out["link_fit"]["intercept_ns"],
           out["inline_fit"]["intercept_ns"]))
    return out


def summary(out):
    return {"ns_stats_per_plugin": out["link_fit"]["slope_ns"],
            "ns_stats_per_plugin_inline": out["inline_fit"]["slope_ns"],
            "ns_stats_lookup_link": out["link_fit"]["intercept_ns"],
            "ns_stats_lookup_inline": out["inline_fit"]["intercept_ns"]}
