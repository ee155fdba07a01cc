# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Control plane: how long a run takes and how often clang runs, for 8 no-op
plugins on a tcx ingress hook in a throwaway network namespace, warm compile
cache (the numbers a rerun of a playbook sees).

Two ways, both real:

* modules: the collection's modules run as Ansible runs them on a target, one
  Python process each (tests/modrun.py): first apply (8 datapath_plugin tasks
  and one dispatcher task on a fresh host), no-op reruns of each module, and
  chain changes (the dispatcher task with another order). A module that does
  nothing (benchmarks/modules/startup.py), run the same way, gives the start-up
  cost every module pays before it works. Module time, compared with the goal,
  is the CPU time (user + system, the module's child processes included) of a
  run less that of the do-nothing run just before it: on a shared machine wall
  time mostly measures the wait for a CPU (wall times are kept too). clang
  runs are counted by a clang-19 on PATH that notes each compile and runs the
  real one.
* in process: the same steps through converge.Engine in this process (no Python
  start-up, no imports), which is what a module spends on its own work.
"""

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from unittest import mock

from common import BPF_DIR, HERE, ROOT, children_cpu, log, pinned
from lab import Lab
from modrun import run_module

N_PLUGINS = 8
STARTUP_MODULE = os.path.join(HERE, "modules", "startup.py")


# Pairs (do-nothing module, measured module) per kind of module run, at least.
# With 25 the median's standard error was about 3 ms, the size of the margin
# under the 30 ms goal; 40 bring it to 1-2 ms for about 10 s more.
MODULE_PAIRS = 40


def _names():
    return ["cp%02d" % i for i in range(N_PLUGINS)]


def _hooks(names, reverse):
    return [{"plugin": n, "function": "noop", "hook": "pre", "constraints": [],
             "priority": (len(names) - i) if reverse else i} for i, n in enumerate(names)]


# ----------------------------------------------------------------- in process

def _spec(lab, names, reverse):
    hooks = sorted(_hooks(names, reverse), key=lambda h: (h["hook"], h["plugin"], h["function"]))
    return {"name": "bench", "attach": "tc_ingress", "interface": lab.if_b, "netns": lab.ns_b, "mode": "link",
            "tc_backend": "tcx", "main": None, "position": None, "keep_generations": 3, "hooks": hooks}


def _apply(scratch, sub, lab, names, reverse, compiles):
    """One run as a module would do it: lock, load, plugins, dispatcher.
    compiles: the count of clang_counter. Returns (wall seconds, changed,
    clang runs, CPU seconds of this process)."""
    before = compiles()
    t0, c0 = time.perf_counter(), time.process_time()
    with scratch.engine(sub) as eng:
        changed = False
        for name in names:
            changed |= eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "noop.c"))[0]
        changed |= eng.ensure_dispatcher(_spec(lab, names, reverse))["changed"]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, changed, compiles() - before, cpu


def _teardown(scratch, sub, names):
    with scratch.engine(sub) as eng:
        if "bench" in eng.registry.dispatchers:
            eng.remove_dispatcher("bench")
        for name in names:
            eng.remove_plugin(name, force=True)


def _in_process(scratch, lab, names, reruns):
    with clang_counter(scratch) as compiles:
        return _in_process_counted(scratch, lab, names, reruns, compiles)


def _in_process_counted(scratch, lab, names, reruns, compiles):
    out = {"reruns": reruns}
    # Warm the compile cache with both orders, then forget that host.
    _apply(scratch, "warm", lab, names, False, compiles)
    _apply(scratch, "warm", lab, names, True, compiles)
    _teardown(scratch, "warm", names)
    first = _apply(scratch, "cp", lab, names, False, compiles)
    out["first_apply_s"], out["first_apply_clang_runs"] = first[0], first[2]
    noop = [_apply(scratch, "cp", lab, names, False, compiles) for _rerun in range(reruns)]
    out["noop_rerun_s"] = statistics.median(r[0] for r in noop)
    out["noop_rerun_cpu_s"] = statistics.median(r[3] for r in noop)
    out["noop_rerun_samples_s"] = [r[0] for r in noop]
    out["noop_rerun_changed"] = any(r[1] for r in noop)
    out["noop_rerun_clang_runs"] = sum(r[2] for r in noop)
    change = [_apply(scratch, "cp", lab, names, i % 2 == 0, compiles) for i in range(reruns)]
    out["chain_change_s"] = statistics.median(r[0] for r in change)
    out["chain_change_cpu_s"] = statistics.median(r[3] for r in change)
    out["chain_change_samples_s"] = [r[0] for r in change]
    out["chain_change_clang_runs"] = sum(r[2] for r in change)
    log("control plane in process: first %.1f ms, no-op rerun %.1f ms (clang %d), chain change %.1f ms"
        % (out["first_apply_s"] * 1e3, out["noop_rerun_s"] * 1e3, out["noop_rerun_clang_runs"],
           out["chain_change_s"] * 1e3))
    return out


# -------------------------------------------------------------------- modules

@contextlib.contextmanager
def clang_counter(scratch):
    """A clang-19 first on PATH that appends a line to a log for every compile
    (-c) and execs the real clang; yields a function returning the count."""
    from common import clang_path
    real = os.path.realpath(clang_path())
    shim_dir = scratch.path("clang-shim")
    os.makedirs(shim_dir, exist_ok=True)
    count_log = os.path.join(shim_dir, "compiles.log")
    open(count_log, "w").close()
    with open(os.path.join(shim_dir, "clang-19"), "w") as handle:
        handle.write('#!/bin/sh\ncase " $* " in *" -c "*) echo "$$" >> %s ;; esac\nexec %s "$@"\n'
                     % (count_log, real))
    os.chmod(os.path.join(shim_dir, "clang-19"), 0o755)
    saved = os.environ["PATH"]
    os.environ["PATH"] = shim_dir + os.pathsep + saved  # modrun hands os.environ to the module
    try:
        def count():
            with open(count_log) as handle:
                return sum(1 for _line in handle)
        yield count
    finally:
        os.environ["PATH"] = saved


def run_startup_module(args):
    """benchmarks/modules/startup.py, run exactly as modrun runs a module."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=False, _ansible_diff=True)}, handle)
        path = handle.name
    try:
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build"))
        proc = subprocess.run([sys.executable, STARTUP_MODULE, path], capture_output=True, text=True, env=env,
                              timeout=120, check=False)
    finally:
        os.unlink(path)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result.get("failed"):
        raise RuntimeError("startup module failed: %s" % result.get("msg"))
    return result


def _modules(scratch, lab, names, reruns):
    common = {"bpffs_root": os.path.join(scratch.bpffs, "mod"), "state_dir": scratch.path("state-mod")}

    def plugin_args(name):
        return dict(common, name=name, src=os.path.join(BPF_DIR, "noop.c"))

    def dispatcher_args(reverse):
        hooks = [dict((k, h[k]) for k in ("plugin", "function", "hook", "priority")) for h in _hooks(names, reverse)]
        return dict(common, name="bench", attach="tc_ingress", interface=lab.if_b, netns=lab.ns_b, mode="link",
                    tc_backend="tcx", plugins=hooks)

    out = {"reruns": reruns}
    with clang_counter(scratch) as compiles:
        def timed(module, args):
            before = compiles()
            cpu0 = children_cpu()
            t0 = time.perf_counter()
            result = run_startup_module(args) if module == "startup" else run_module(module, args)
            return {"s": time.perf_counter() - t0, "cpu_s": children_cpu() - cpu0,
                    "changed": bool(result.get("changed")), "clang_runs": compiles() - before}

        first = [timed("datapath_plugin", plugin_args(n)) for n in names] + [timed("dispatcher", dispatcher_args(False))]
        # Each measured run follows a start-up module run, so the difference of
        # the pair is the module's own time with drift on a busy machine cancelled.
        pairs = {"noop_plugin": [], "noop_dispatcher": [], "chain_change": []}
        reverse = False  # the order the dispatcher runs now
        for _run in range(reruns):
            pairs["noop_plugin"].append((timed("startup", common), timed("datapath_plugin", plugin_args(names[0]))))
            pairs["noop_dispatcher"].append((timed("startup", common), timed("dispatcher", dispatcher_args(reverse))))
            reverse = not reverse
            pairs["chain_change"].append((timed("startup", common), timed("dispatcher", dispatcher_args(reverse))))

    startup = [s for runs in pairs.values() for s, _m in runs]
    out.update({
        "startup_s": statistics.median(r["s"] for r in startup),
        "startup_cpu_s": statistics.median(r["cpu_s"] for r in startup),
        "first_apply_s": sum(r["s"] for r in first), "first_apply_tasks": len(first),
        "first_apply_cpu_s": sum(r["cpu_s"] for r in first),
        "first_apply_clang_runs": sum(r["clang_runs"] for r in first),
        "first_apply_samples_s": [r["s"] for r in first],
    })
    for key, runs in pairs.items():
        out[key + "_s"] = statistics.median(m["s"] for _s, m in runs)
        out[key + "_cpu_s"] = statistics.median(m["cpu_s"] for _s, m in runs)
        out[key + "_module_wall_s"] = statistics.median(m["s"] - s["s"] for s, m in runs)
        out[key + "_module_s"] = statistics.median(m["cpu_s"] - s["cpu_s"] for s, m in runs)
        # The standard error of that median (1.2533 sigma / sqrt(n)), for the report.
        out[key + "_module_se_s"] = (1.2533 * statistics.pstdev([m["cpu_s"] - s["cpu_s"] for s, m in runs])
                                     / len(runs) ** 0.5)
        out[key + "_samples_s"] = [[s["s"], m["s"], s["cpu_s"], m["cpu_s"]] for s, m in runs]
        out[key + "_clang_runs"] = sum(m["clang_runs"] for _s, m in runs)
        out[key + "_changed"] = [m["changed"] for _s, m in runs]
    out["noop_changed"] = any(out["noop_plugin_changed"] + out["noop_dispatcher_changed"])
    out["noop_clang_runs"] = out["noop_plugin_clang_runs"] + out["noop_dispatcher_clang_runs"]
    log("control plane, modules: start-up %.0f ms; first apply %.0f ms for %d tasks (clang %d); no-op rerun: "
        "datapath_plugin %.0f ms, dispatcher %.0f ms wall (module CPU time %.0f / %.0f ms, clang %d, changed %s); "
        "chain change %.0f ms (module CPU time %.0f ms, clang %d)"
        % (out["startup_s"] * 1e3, out["first_apply_s"] * 1e3, len(first), out["first_apply_clang_runs"],
           out["noop_plugin_s"] * 1e3, out["noop_dispatcher_s"] * 1e3, out["noop_plugin_module_s"] * 1e3,
           out["noop_dispatcher_module_s"] * 1e3, out["noop_clang_runs"], out["noop_changed"],
           out["chain_change_s"] * 1e3, out["chain_change_module_s"] * 1e3, out["chain_change_clang_runs"]))
    return out


def clang_probe_cost(runs=3):
    """What a module run spends finding out which clang it has, when the cache
    means it will not compile: the processes toolchain.find_clang and
    arch_include_dir start (clang --version, clang -print-targets, gcc
    -print-multiarch). Median seconds of `runs` rounds."""
    from common import clang_path
    clang = clang_path()
    times = []
    for _run in range(runs):
        t0 = time.perf_counter()
        for argv in ([clang, "--version"], [clang, "-print-targets"], ["gcc", "-print-multiarch"]):
            subprocess.run(argv, capture_output=True, check=False, timeout=60)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


ENGINE_IMPORTS = """
import time
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ebpf.datapath.plugins.module_utils import module_common
c, w = time.process_time(), time.perf_counter()
from ansible_collections.ebpf.datapath.plugins.module_utils import attach, converge, libbpf, planner, roots
print(time.process_time() - c, time.perf_counter() - w)
"""


def engine_import_cost(runs=3):
    """CPU and wall seconds a module spends importing what a no-op dispatcher
    run imports (the engine, the planner, attach.py, the libbpf binding;
    test_module_imports) after what the do-nothing module imports too
    (median of `runs` fresh processes)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build"))
    cpu, wall = [], []
    for _run in range(runs):
        proc = subprocess.run([sys.executable, "-c", ENGINE_IMPORTS], capture_output=True, text=True, env=env,
                              timeout=120, check=True)
        c, w = proc.stdout.split()
        cpu.append(float(c))
        wall.append(float(w))
    return {"cpu_s": statistics.median(cpu), "wall_s": statistics.median(wall)}


@contextlib.contextmanager
def from_source():
    """Module runs compile the collection's Python from source, as under Ansible
    (AnsiballZ runs modules from a zip, where Python caches no bytecode): no
    bytecode is written for them, and any the work tree holds (a test run
    without PYTHONDONTWRITEBYTECODE leaves some) is removed first, so the
    figures do not depend on what ran before."""
    for top in ("plugins", "tests", "benchmarks"):
        for where, dirs, _files in os.walk(os.path.join(ROOT, top)):
            if "__pycache__" in dirs:
                shutil.rmtree(os.path.join(where, "__pycache__"))
                dirs.remove("__pycache__")
    with mock.patch.dict(os.environ, PYTHONDONTWRITEBYTECODE="1"):  # modrun and the runs here hand os.environ on
        yield


def bench(scratch, reruns):
    names = _names()
    with from_source():
        return _bench(scratch, names, reruns)


def _bench(scratch, names, reruns):
    out = {"plugins": N_PLUGINS, "clang_probe_s": clang_probe_cost(), "engine_import": engine_import_cost()}
    with Lab() as lab:
        try:
            out["in_process"] = _in_process(scratch, lab, names, reruns)  # also warms the cache for the modules
            # A module run's CPU time varies by several ms on a shared machine:
            # more pairs than in-process reruns, so the median holds still, and
            # every module process on one CPU (the pair differences of 25 runs
            # spread with a standard deviation of 10-20 ms unpinned, 4-11 pinned).
            with pinned() as cpu:
                out["modules"] = _modules(scratch, lab, names, max(reruns, MODULE_PAIRS))
            out["modules"]["pinned_cpu"] = cpu
        finally:
            for sub in ("warm", "cp", "mod"):
                try:
                    _teardown(scratch, sub, names)
                except Exception as exc:  # report, keep cleaning
                    log("teardown %s: %s" % (sub, exc))
    return out


def summary(out):
    ip, mod = out["in_process"], out["modules"]
    return {
        "control_first_apply_s": mod["first_apply_s"],
        "control_noop_rerun_s": max(mod["noop_plugin_module_s"], mod["noop_dispatcher_module_s"]),
        "control_noop_rerun_plugin_s": mod["noop_plugin_module_s"],
        "control_noop_rerun_dispatcher_s": mod["noop_dispatcher_module_s"],
        "control_noop_rerun_plugin_se_s": mod["noop_plugin_module_se_s"],
        "control_noop_rerun_dispatcher_se_s": mod["noop_dispatcher_module_se_s"],
        "control_noop_rerun_clang_runs": mod["noop_clang_runs"],
        "control_chain_change_s": mod["chain_change_module_s"],
        "control_module_startup_s": mod["startup_s"],
        "control_in_process_noop_rerun_s": ip["noop_rerun_s"],
        "control_in_process_chain_change_s": ip["chain_change_s"],
    }
