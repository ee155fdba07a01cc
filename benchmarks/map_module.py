# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""datapath_map with 10,000 entries in one task, through real module runs.

The test plugin bpf/testdata/maps_typed.c is installed with datapath_plugin in
this run's scratch bpffs root; its hash map `flows` (struct keys, struct values
of integers, an enum, a MAC, an IPv6 address, a char array) then takes, per
round, three datapath_map tasks as a playbook without --diff runs them:

* write: 10,000 entries into the empty map (changed, 10,000 added);
* no-op rerun: the same 10,000 entries again (not changed);
* exact removal: `exact: true` with no entries, which removes all 10,000
  (changed; the map is empty again for the next round).

Each module runs as Ansible runs it on a target (tests/modrun.py, one Python
process) and is timed the way benchmarks/control.py times modules: module time
is the CPU time (user + system) of the run less that of a do-nothing module run
just before it. That difference holds everything the task costs beyond Python
and Ansible's start-up, the parsing and checking of its 10,000 entries
included. Wall times and the module's own `elapsed` (its map work: open, read,
plan, write) are kept too.
"""

import os
import statistics
import time

from common import ROOT, children_cpu, log
from control import run_startup_module
from modrun import run_module

ENTRIES = 10000
PLUGIN = "typed"
MAP = "flows"
SOURCE = os.path.join(ROOT, "bpf", "testdata", "maps_typed.c")
STEPS = ("write", "noop", "exact_remove")


def entries(count):
    """count distinct flows as a playbook would list them (every value field typed by text or number)."""
    out = []
    for i in range(count):
        hi, lo = divmod(i, 256)
        out.append({"key": {"addr": "172.16.%d.%d" % (hi, lo), "port": 1024 + i, "proto": 17},
                    "value": {"mac": "02:00:00:00:%02x:%02x" % (hi, lo), "weight": i % 65536, "delta": -i,
                              "act": "ACT_DROP" if i % 2 else "ACT_PASS", "on": bool(i % 3),
                              "tag": "%06x" % (i & 0xffffff), "addr6": "2001:db8::%x" % (i + 1)}})
    return out


def _expect(step, result, count):
    """The task did what the step means, or the figure would time another path."""
    wanted = {"write": (True, count, 0, count), "noop": (False, 0, 0, count), "exact_remove": (True, 0, count, 0)}
    got = (bool(result.get("changed")), result.get("added"), result.get("removed"), result.get("entries"))
    if got != wanted[step]:
        raise RuntimeError("datapath_map %s: changed/added/removed/entries %s, expected %s" % (step, got, wanted[step]))


def bench(scratch, rounds):
    common = {"bpffs_root": os.path.join(scratch.bpffs, "map"), "state_dir": scratch.path("state-map")}
    listed = entries(ENTRIES)
    args = {
        "write": dict(common, plugin=PLUGIN, map=MAP, entries=listed),
        "noop": dict(common, plugin=PLUGIN, map=MAP, entries=listed),
        "exact_remove": dict(common, plugin=PLUGIN, map=MAP, entries=[], exact=True),
    }

    def timed(step):
        cpu0, t0 = children_cpu(), time.perf_counter()
        if step == "startup":
            result = run_startup_module(common)
        else:
            result = run_module("datapath_map", args[step], diff=False)
            _expect(step, result, ENTRIES)
        return {"s": time.perf_counter() - t0, "cpu_s": children_cpu() - cpu0, "elapsed_s": result.get("elapsed")}

    out = {"entries": ENTRIES, "rounds": rounds, "map": MAP, "plugin_source": os.path.relpath(SOURCE, ROOT)}
    run_module("datapath_plugin", dict(common, name=PLUGIN, src=SOURCE))
    try:
        pairs = dict((step, []) for step in STEPS)
        for _round in range(rounds):
            for step in STEPS:
                pairs[step].append((timed("startup"), timed(step)))
    finally:
        run_module("datapath_plugin", dict(common, name=PLUGIN, state="absent"))
    for step, runs in pairs.items():
        out[step] = {
            "module_s": statistics.median(m["cpu_s"] - s["cpu_s"] for s, m in runs),
            "cpu_s": statistics.median(m["cpu_s"] for _s, m in runs),
            "wall_s": statistics.median(m["s"] for _s, m in runs),
            "map_work_s": statistics.median(m["elapsed_s"] for _s, m in runs),
            "startup_cpu_s": statistics.median(s["cpu_s"] for s, _m in runs),
            "samples": [[s["s"], m["s"], s["cpu_s"], m["cpu_s"], m["elapsed_s"]] for s, m in runs],
        }
    log("datapath_map, %d entries, module time (CPU less a do-nothing module's): write %.3f s, no-op rerun %.3f s, "
        "exact removal %.3f s (map work %.3f / %.3f / %.3f s; wall %.3f / %.3f / %.3f s)"
        % tuple([ENTRIES] + [out[s]["module_s"] for s in STEPS] + [out[s]["map_work_s"] for s in STEPS]
                + [out[s]["wall_s"] for s in STEPS]))
    return out


def summary(out):
    return {
        "datapath_map_10k_write_s": out["write"]["module_s"],
        "datapath_map_10k_noop_s": out["noop"]["module_s"],
        "datapath_map_10k_exact_remove_s": out["exact_remove"]["module_s"],
    }
