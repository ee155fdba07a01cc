# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet rollout built on the targets and built on the controller: wall time
and where clang ran.

    benchmarks/fleet_rollout.py [--size 20] [--out benchmarks/results/fleet.json]   (root)

It writes the results JSON and the fleet section of BENCHMARKS.md (benchmarks/report.py,
from the last full run's results, the soak's and this one).

For each of ``datapath_rollout_build_on: target`` (every host compiles, as
before issue 17) and ``controller`` (the default now): a fresh simulated fleet
(tests/fleet.py: a network namespace, a veth, a bpffs_root and a state_dir per
host, the local connection), playbooks/rollout.yml from nothing to chain B
(two plugins from bpf/testdata, counter_twin.c then dropper.c) with one canary
and batches of 5 and no boot unit, and then traffic through every host to
check it runs B. Each host compiles into its own state_dir's cache, the
controller into a cold cache of its own, so the clang runs are read from the
caches afterwards: one compile entry per clang run.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import RESULTS, ROOT, log, machine_facts  # common sets up the import paths first
from fleet import CHAIN_B as FLEET_CHAIN_B, DROP_PORT, Fleet
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

PLAYBOOK = os.path.join(ROOT, "playbooks", "rollout.yml")
VENV_BIN = os.path.dirname(sys.executable)
# The rollout from nothing: no boot unit to install.
CHAIN_B = dict(FLEET_CHAIN_B, datapath_rollout_boot=False)


def compiles(cache):
    """Clang runs that filled a compile cache: its manifests."""
    count = 0
    for _dirpath, _dirs, files in os.walk(os.path.join(cache, "objects")):
        count += sum(1 for n in files if n.endswith(".json") and not n.startswith("."))
    return count


def rollout(size, build_on, work):
    """One rollout on a fresh fleet; its figures."""
    os.makedirs(work)
    with Fleet(size, work) as fleet:
        inventory = fleet.write_inventory(os.path.join(work, "inventory.json"))
        extra = dict(CHAIN_B, datapath_rollout_build_on=build_on,
                     datapath_rollout_code_dir=os.path.join(work, "code"),
                     datapath_rollout_summary_file=os.path.join(work, "summary.json"))
        with open(os.path.join(work, "extra.json"), "w") as handle:
            json.dump(extra, handle)
        controller_cache = os.path.join(work, "controller-cache")
        env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ["PATH"],
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCAL_TEMP=os.path.join(work, "ansible-local"),
                   ANSIBLE_REMOTE_TMP=os.path.join(work, "ansible-remote"),
                   EBPF_DATAPATH_CONTROLLER_CACHE_DIR=controller_cache)
        env.pop("EBPF_DATAPATH_CACHE_DIR", None)  # each host its own cache, in its state_dir
        started = time.monotonic()
        proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "--forks", "5",
                               "-e", "@" + os.path.join(work, "extra.json"), PLAYBOOK],
                              capture_output=True, text=True, env=env, timeout=1800, check=False)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit("the rollout (build_on %s) failed:\n%s" % (build_on, (proc.stdout + proc.stderr)[-6000:]))
        with open(extra["datapath_rollout_summary_file"]) as handle:
            summary = json.load(handle)
        if summary["rollout"] != "complete":
            raise SystemExit("the rollout (build_on %s) did not complete: %s" % (build_on, summary))
        # Every host runs chain B: the counter counts, the dropper drops.
        wrong = []
        for host in fleet.hosts:
            counted, dropped = fleet.counter(host, "count_b"), fleet.counter(host, "drop", "dropped")
            fleet.send(host, 5, port=9999)
            fleet.send(host, 3, port=DROP_PORT)
            if fleet.counter(host, "count_b") - counted < 8 or fleet.counter(host, "drop", "dropped") - dropped != 3:
                wrong.append(host.name)
        if wrong:
            raise SystemExit("hosts not running chain B after the rollout (build_on %s): %s" % (build_on, wrong))
        on_targets = sum(compiles(os.path.join(h.state_dir, "cache")) for h in fleet.hosts)
        figures = {"build_on": build_on, "hosts": size, "wall_s": round(wall, 1),
                   "clang_runs_controller": compiles(controller_cache), "clang_runs_targets": on_targets}
    log("build_on %(build_on)s: %(hosts)d hosts in %(wall_s).1f s, clang runs: controller "
        "%(clang_runs_controller)d, targets %(clang_runs_targets)d" % figures)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--out", default=os.path.join(RESULTS, "fleet.json"))
    parser.add_argument("--no-report", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("benchmarks/fleet_rollout.py needs root (network namespaces, BPF)")
    work = tempfile.mkdtemp(prefix="dpbench-fleet-")
    try:
        facts = machine_facts(Toolchain(os.path.join(work, "facts-cache"), run_subprocess))
        runs = [rollout(args.size, build_on, os.path.join(work, build_on)) for build_on in ("target", "controller")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    data = {"date": time.strftime("%Y-%m-%d"), "size": args.size, "runs": runs, "machine": facts}
    with open(args.out, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    log("wrote %s" % args.out)
    full = os.path.join(RESULTS, "full.json")
    if not args.no_report and os.path.exists(full):
        import report  # BENCHMARKS.md from the last full run, with this fleet's section
        report.main([full, "--keep-plots", "--fleet", args.out])
    return 0


if __name__ == "__main__":
    sys.exit(main())
