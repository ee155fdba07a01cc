# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Entry programs as hooks against plain hook functions, link mode, BPF_PROG_TEST_RUN.

An entry program (a function under SEC("tc") returning its own verdict,
benchmarks/bpf/entry_noop.c) used as a pre hook has its verdict mapped by the
dispatcher: its pass (TC_ACT_OK) and DP_CONTINUE go on, anything else ends the
chain. A plain hook (benchmarks/bpf/noop.c, DP_CONTINUE) is tested against
DP_CONTINUE only. Both do nothing else, so the difference between a chain of N
of each is that mapping.

For each N the two dispatchers, built exactly as the engine builds them, are
timed alternately, each first in every other pair (common.paired), so drift on
a shared machine and the order of the runs hit both alike. Per hook: least-squares slopes over N of each variant's medians, and of
the medians of the per-pair differences. The instructions the verifier kept
and the JITed bytes of each dispatcher are read back, and the JITed
dispatcher function with one hook of each kind is disassembled (jit_facts),
so the figure can be checked against the code that produced it.
"""

import os
import statistics

from common import (BPF_DIR, cpu_mitigations, cpu_model, fit_slope, libbpf, log, paired, remove_bpffs_tree,
                    time_prog, udp_packet)
from jit_facts import disassemble
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod

HOOK_COUNTS = (0, 1, 8, 32, 64)
VARIANTS = (("plain", "noop.c", "noop"), ("entry", "entry_noop.c", "entry_noop"))


def _names(variant):
    return ["%s%02d" % (variant, i) for i in range(max(HOOK_COUNTS))]


def _build(eng, dname, names, function):
    chain = {"pre": [[name, function] for name in names], "post": []}
    return disp_mod.build_link(eng.toolchain, eng.layout, dname, "tc", chain, None, eng.registry.plugins,
                               eng.layout.generation_prog_pin(dname, 1))


RESOLUTION_NS = 1.0  # the kernel reports a test run's mean per repeat in whole ns


def _middle_half(diffs):
    """First and third quartile of the per-pair differences."""
    quartiles = statistics.quantiles(diffs, n=4, method="inclusive")
    return [quartiles[0], quartiles[2]]


def _within_noise(middle):
    """The difference does not stand out: the middle half of the per-pair
    differences holds 0, or stays within the kernel's resolution."""
    return middle[0] <= 0 <= middle[1] or max(abs(middle[0]), abs(middle[1])) <= RESOLUTION_NS


def bench(scratch, repeat, runs):
    pkt = udp_packet()
    out = {"counts": list(HOOK_COUNTS), "repeat": repeat, "runs": runs, "cpu": cpu_model(), "cpu_mitigations": cpu_mitigations(),
           "plain": {}, "entry": {}, "pairs": {}, "code": {}}
    with scratch.engine("entry") as eng:
        names = dict((variant, _names(variant)) for variant, _src, _fn in VARIANTS)
        try:
            for variant, src, _fn in VARIANTS:
                for name in names[variant]:
                    eng.ensure_plugin(name, src=os.path.join(BPF_DIR, src))
            for n in HOOK_COUNTS:
                built = {}
                try:
                    for variant, _src, function in VARIANTS:
                        dname = "%s%d" % (variant, n)
                        built[variant] = _build(eng, dname, names[variant][:n], function)
                    for variant, fd in ((v, b.fd) for v, b in built.items()):
                        time_prog(fd, pkt, 1000, 1)  # checks the verdict (pass) and warms up
                        info = libbpf.prog_info(fd)
                        out["code"].setdefault(variant, {})[str(n)] = {
                            "insns": info.xlated_prog_len // 8, "jited_bytes": info.jited_prog_len}
                        if n == 1:
                            out["code"][variant]["jited_dispatcher_1"] = disassemble(fd)[0]
                    pair = paired(built["plain"].fd, built["entry"].fd, pkt, repeat, runs, flip=True)
                    diffs = [b - a for a, b in zip(pair["a_ns"], pair["b_ns"])]
                    out["plain"][str(n)] = {"median_ns": statistics.median(pair["a_ns"]), "samples_ns": pair["a_ns"]}
                    out["entry"][str(n)] = {"median_ns": statistics.median(pair["b_ns"]), "samples_ns": pair["b_ns"]}
                    middle = _middle_half(diffs)
                    out["pairs"][str(n)] = {"diff_median_ns": pair["diff_median_ns"], "diffs_ns": diffs,
                                            "middle_half_ns": middle, "within_noise": _within_noise(middle)}
                    out["stats_on_during_runs"] = out.get("stats_on_during_runs", False) or any(
                        libbpf.prog_info(b.fd).run_cnt > 0 for b in built.values())
                finally:
                    for variant, b in built.items():
                        b.close()
                        remove_bpffs_tree(eng.layout.dispatcher_dir("%s%d" % (variant, n)))
                log("%d hooks: plain %.1f ns, entry programs %.1f ns, entry - plain (paired) %+.1f ns"
                    % (n, out["plain"][str(n)]["median_ns"], out["entry"][str(n)]["median_ns"],
                       out["pairs"][str(n)]["diff_median_ns"]))
        finally:
            for variant_names in names.values():
                for name in variant_names:
                    eng.remove_plugin(name)
    xs = list(HOOK_COUNTS)

    def fit(ys):
        slope, intercept = fit_slope(xs, ys)
        return {"slope": slope, "intercept": intercept}

    out["plain_fit"] = fit([out["plain"][str(n)]["median_ns"] for n in xs])
    out["entry_fit"] = fit([out["entry"][str(n)]["median_ns"] for n in xs])
    out["diff_fit"] = fit([out["pairs"][str(n)]["diff_median_ns"] for n in xs])
    for variant in ("plain", "entry"):
        out["insns_fit_" + variant] = fit([out["code"][variant][str(n)]["insns"] for n in xs])
    largest = str(max(HOOK_COUNTS))
    out["largest"] = int(largest)
    out["within_noise"] = out["pairs"][largest]["within_noise"]
    log("entry programs as hooks, link mode, on %s (mitigations: %s): %.2f ns per plain hook, %.2f ns per entry "
        "hook, entry - plain %+.3f ns per hook (paired; %s); %+.2f BPF instructions per hook"
        % (out["cpu"], "; ".join("%s: %s" % kv for kv in sorted(out["cpu_mitigations"].items())),
           out["plain_fit"]["slope"], out["entry_fit"]["slope"], out["diff_fit"]["slope"],
           "within noise" if out["within_noise"] else "outside noise",
           out["insns_fit_entry"]["slope"] - out["insns_fit_plain"]["slope"]))
    return out


def summary(out):
    """The headline numbers of this section, for the top level of the results."""
    return {
        "ns_per_plain_hook_link": out["plain_fit"]["slope"],
        "ns_per_entry_hook_link": out["entry_fit"]["slope"],
        "ns_entry_over_plain_hook_paired": out["diff_fit"]["slope"],
        "entry_hook_difference_within_noise": out["within_noise"],
        "ns_entry_hooks_by_count": dict((k, v["median_ns"]) for k, v in out["entry"].items()),
        "ns_plain_hooks_by_count": dict((k, v["median_ns"]) for k, v in out["plain"].items()),
    }
