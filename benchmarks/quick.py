# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmarks of ebpf.datapath (root): measure, never judge.

Runs every section in one process and writes benchmarks/results/<mode>.json;
benchmarks/report.py turns that into BENCHMARKS.md and the plots. Sections (one
file each in benchmarks/):

1. jit_facts: JIT/stat sysctls, CPU mitigations, the JITed code of a plugin
   call and a tail call, native call/return costs: why the numbers are what
   they are;
2. packet_path: BPF_PROG_TEST_RUN of direct, link, tail-call and inline
   variants (inline: the collection's inline_build.prepare_inline), 8 working
   plugins inline against a hand-merged program, each parsing and on the
   chain's one parse (struct dp_pkt);
2b. stats_cost: per-plugin statistics (stats: true) on vs off, link and inline;
3. entry_hooks: entry programs (SEC("tc"), own verdicts) as hooks against
   plain hook functions, link mode, paired runs;
4. solver: 10,000 entries, 50,000 constraints;
5. control: module runs (first apply, no-op rerun, chain change, clang runs);
6. map_module: datapath_map module runs with 10,000 entries (write, no-op
   rerun, exact removal);
7. traffic: packets per second through a veth: no program, a pass-through
   program, 0 and 8 plugins in link mode, 8 plugins inline;
8. swap: 200 chain changes under load, stamped packets, per attach backend;
9. vm_freplace (full mode only): freplace next to link mode in the stock-kernel VM.

Slow numbers are reported, not failed on. Everything made here (netns, veth,
bpffs pins, temp dirs) is removed on exit.
"""

import argparse
import json
import os
import sys
import time

from common import RESULTS, Scratch, log, machine_facts
from ansible_collections.ebpf.datapath.plugins.module_utils import bpffs
import control
import entry_hooks
import jit_facts
import map_module
import packet_path
import solver
import stats_cost
import swap
import traffic
import vm_freplace
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

# What each mode runs. quick: a few minutes, no VM; full: everything.
MODES = {
    "quick": {"repeat": 1000000, "runs": 7, "solver_runs": 3, "control_reruns": 3,
              "traffic_rounds": 20, "traffic_seconds": 0.2, "traffic_pairs": 150,
              "swap_backends": ["tcx"], "swap_changes": 40, "swap_rate": 20000, "swap_min_packets": 30000,
              "vm": False},
    "full": {"repeat": 3000000, "runs": 11, "solver_runs": 5, "control_reruns": 5,
             "traffic_rounds": 40, "traffic_seconds": 0.2, "traffic_pairs": 400,
             "swap_backends": ["tcx", "clsact"], "swap_changes": 200, "swap_rate": 25000,
             "swap_min_packets": 110000,
             "vm": True, "vm_counts": [0, 1, 8, 32], "vm_repeat": 20000, "vm_runs": 5, "vm_timeout": 480},
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="quick")
    parser.add_argument("--repeat", type=int, help="BPF_PROG_TEST_RUN repeats per run")
    parser.add_argument("--runs", type=int, help="runs per variant (the median is reported)")
    parser.add_argument("--swaps", type=int, dest="swap_changes", help="chain changes under load")
    parser.add_argument("--swap-backends", help="comma-separated tc backends for the swap test (tcx,clsact)")
    parser.add_argument("--vm", dest="vm", action="store_true", default=None, help="run the VM section")
    parser.add_argument("--no-vm", dest="vm", action="store_false", help="skip the VM section")
    parser.add_argument("--out", help="JSON output (default benchmarks/results/<mode>.json)")
    args = parser.parse_args(argv)
    conf = dict(MODES[args.mode])
    for key in ("repeat", "runs", "swap_changes", "vm"):
        if getattr(args, key) is not None:
            conf[key] = getattr(args, key)
    if args.swap_backends:
        conf["swap_backends"] = args.swap_backends.split(",")
    conf.setdefault("vm_counts", [0, 1, 8, 32])
    conf.setdefault("vm_repeat", 20000)
    conf.setdefault("vm_runs", 5)
    conf.setdefault("vm_timeout", 480)
    return args, conf


def main(argv=None):
    args, conf = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("benchmarks need root (BPF, netns, bpffs)")
    bpffs.ensure_bpffs("/sys/fs/bpf")

    scratch = Scratch()
    os.environ["EBPF_DATAPATH_CACHE_DIR"] = scratch.cache  # one cache for every engine and module here
    started = time.time()
    sections = {}
    try:
        facts = machine_facts(Toolchain(scratch.cache, run_subprocess))
        log("mode %s on kernel %s, %s, load average %.1f" % (args.mode, facts["kernel"], facts["cpu_model"],
                                                             facts["load_average_at_start"][0]))
        sections["jit"] = jit_facts.collect(scratch)
        sections["packet_path"] = packet_path.bench(scratch, conf["repeat"], conf["runs"])
        sections["stats"] = stats_cost.bench(scratch, conf["repeat"], conf["runs"])
        sections["entry_hooks"] = entry_hooks.bench(scratch, conf["repeat"], conf["runs"])
        sections["solver"] = solver.bench(runs=conf["solver_runs"])
        sections["control_plane"] = control.bench(scratch, conf["control_reruns"])
        with control.from_source():  # module runs, as control's: compiled from source
            sections["datapath_map"] = map_module.bench(scratch, conf["control_reruns"])
        sections["traffic"] = traffic.bench(scratch, conf["traffic_rounds"], conf["traffic_seconds"],
                                            conf["traffic_pairs"])
        sections["swap"] = swap.bench(scratch, conf["swap_backends"], conf["swap_changes"], conf["swap_rate"],
                                      conf["swap_min_packets"])
        if conf["vm"]:
            sections["vm"] = vm_freplace.run(scratch, conf["vm_counts"], conf["vm_repeat"], conf["vm_runs"],
                                             conf["vm_timeout"])
            if not sections["vm"]["ran"]:
                log("VM section did not run: %s" % sections["vm"]["reason"])
        else:
            sections["vm"] = {"ran": False, "reason": "not part of mode %s (make bench runs it)" % args.mode}
    finally:
        scratch.close()

    vm = sections["vm"]
    result = {
        "mode": args.mode,
        "config": conf,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": time.time() - started,
        "machine": dict(facts, load_average_at_end=list(os.getloadavg())),
        "solver_10k_s": sections["solver"]["median_s"],
        "vm_ran": vm["ran"],
        "ns_per_plugin_freplace_over_link": vm.get("freplace_over_link_per_plugin"),
        "details": sections,
    }
    result.update(packet_path.summary(sections["packet_path"]))
    result.update(stats_cost.summary(sections["stats"]))
    result.update(entry_hooks.summary(sections["entry_hooks"]))
    result.update(control.summary(sections["control_plane"]))
    result.update(map_module.summary(sections["datapath_map"]))
    result.update(traffic.summary(sections["traffic"]))
    result.update(swap.summary(sections["swap"]))
    path = args.out or os.path.join(RESULTS, "%s.json" % args.mode)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)
    log("wrote %s (%.0f s)" % (path, result["wall_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
