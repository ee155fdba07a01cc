# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many runs against one host at once: the lock serializes them, the host ends in
one of the requested states with nothing leaked, and a run killed while it
holds the lock blocks nobody (flock dies with its holder).

Every run is a separate module process on the same bpffs_root and state_dir,
as parallel Ansible runs (or two operators) would be.
"""

import fcntl
import itertools
import os
import time

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils.state import Layout, Lock

from hardening_host import (Run, Stream, diff_snapshots, fresh_host, module_env, run_crashing, snapshot,
                            tcx_progs, wait_for_objects)

PORT = 9998
NAMES = ("p0", "p1", "p2")
# Eight different chains, each with p0 in it, so p0's counter sees every packet
# whichever chain runs.
CHAINS = [list(c) for c in itertools.permutations(NAMES)] + [["p0"], ["p0", "p2"]]
INITIAL = ["p0", "p1"]  # none of CHAINS: every one of the eight runs is a change


@pytest.fixture(scope="module")
def conc_host(tmp_path_factory):
    with fresh_host(tmp_path_factory.mktemp("concurrency")) as host:
        for name in NAMES:
            host.plugin(name, "counter.c")
        host.run("dispatcher", **dispatcher_args(host, INITIAL))
        yield host


def dispatcher_args(host, chain, **extra):
    """The dispatcher running chain, in that order (priority = position)."""
    lab = host.lab
    args = dict(name="dconc", attach="tc_ingress", interface=lab.if_b, netns=lab.ns_b, tc_backend="tcx",
                mode="link", keep_generations=3,
                plugins=[{"plugin": p, "function": "count", "priority": i} for i, p in enumerate(chain)])
    args.update(extra)
    return args


def running(host):
    """(chain, recorded prog id, prog id the kernel runs at the hook, datapath_info's view)."""
    disp = host.registry()["dispatchers"]["dconc"]
    info = host.run("datapath_info", dispatcher="dconc")["dispatchers"][0]
    kernel = tcx_progs(host.lab, host.lab.ns_b, host.lab.if_b)["ingress"]
    return [p for p, _f in disp["chain"]["pre"]], disp["attachment"]["prog_id"], kernel, info


def test_eight_runs_at_once_serialize(conc_host):
    host = conc_host
    first_gen = host.registry()["dispatchers"]["dconc"]["generation"]
    counted_before = host.map_value("p0")
    with Stream(host.lab, PORT) as stream:
        runs = [Run("dispatcher", host.args(**dispatcher_args(host, chain))) for chain in CHAINS]
        for run in runs:
            run.wait(timeout=600)
        sent, missing = stream.stop()
    for run in runs:
        assert run.rc == 0 and run.result and not run.result.get("failed"), run.describe()
    # Serialized: each run built on the one before it, one generation each.
    gens = sorted(run.result["generation"] for run in runs)
    assert gens == list(range(first_gen + 1, first_gen + 1 + len(CHAINS))), gens
    last = max(runs, key=lambda r: r.result["generation"])
    chain, recorded, kernel, info = running(host)
    assert chain in CHAINS and chain == [p for p, _f in last.result["chain"]["pre"]]
    assert kernel == [recorded] == [info["prog_id"]] == [last.result["prog_id"]]
    assert info["attached"] is True and [p for p, _f in info["chain"]["pre"]] == chain
    # Nothing leaked: the three kept generations and one link, no more.
    got, want = wait_for_objects(host)
    assert got["progs"] == want["progs"] and len(got["progs"]) == 3, (got, want)
    assert got["links"] == want["links"] and len(got["links"]) == 1, (got, want)
    assert got["pins"] == want["pins"], (got, want)
    # Eight swaps under traffic: no datagram lost, none passed without p0 counting it.
    assert sent > 100 and missing == [], (sent, missing[:10])
    assert host.map_value("p0") - counted_before == sent


def test_lock_timeout_is_a_clear_failure(conc_host):
    """While another run holds the lock, runs with a short lock_timeout fail,
    saying who holds it and what to do, and change nothing."""
    host = conc_host
    before = snapshot(host, [(host.lab.ns_b, host.lab.if_b)])
    with Lock(Layout(host.bpffs_root, host.state_dir)):
        runs = [Run("dispatcher", host.args(**dispatcher_args(host, chain, lock_timeout=1)))
                for chain in (["p1", "p0"], ["p2", "p0"], ["p0", "p1"])]
        for run in runs:
            run.wait()
    for run in runs:
        assert run.result and run.result.get("failed"), run.describe()
        msg = run.result["msg"]
        assert "holds the lock" in msg and "pid %d" % os.getpid() in msg and "lock_timeout" in msg, msg
    assert diff_snapshots(before, snapshot(host, [(host.lab.ns_b, host.lab.if_b)])) == []


def test_killed_lock_holder_blocks_nobody(conc_host):
    """A run SIGKILLed while holding the lock (at after_compile) leaves its pid in
    the lock file, but the kernel released the flock with the process: the next
    run takes the lock at once."""
    host = conc_host
    lock_path = Layout(host.bpffs_root, host.state_dir).lock_path
    chain_now = running(host)[0]
    target = ["p2", "p1", "p0"] if chain_now != ["p2", "p1", "p0"] else ["p1", "p2", "p0"]
    doomed = run_crashing("dispatcher", host.args(**dispatcher_args(host, target)), "after_compile")
    assert _lock_pid(lock_path) == doomed.proc.pid, "a killed run cannot clean up: its pid stays in the file"
    with pytest.raises(ProcessLookupError):
        os.kill(doomed.proc.pid, 0)
    # Nobody holds the flock any more: we take it without waiting.
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    started = time.monotonic()
    nxt = Run("dispatcher", host.args(**dispatcher_args(host, target, lock_timeout=2))).wait()
    assert nxt.rc == 0 and nxt.result["changed"] is True, nxt.describe()
    assert time.monotonic() - started < 60
    chain, recorded, kernel, info = running(host)
    assert chain == target and kernel == [recorded] and info["attached"] is True
    got, want = wait_for_objects(host)
    assert got["progs"] == want["progs"] and got["links"] == want["links"] and got["pins"] == want["pins"]


def test_run_waiting_behind_a_killed_holder_proceeds(conc_host):
    """A run that dies holding the lock and one waiting for it, started together:
    whichever gets the lock first, both end and the survivor applies its chain."""
    host = conc_host
    chain_now = running(host)[0]
    target = ["p0", "p2"] if chain_now != ["p0", "p2"] else ["p0", "p1"]
    doomed = Run("dispatcher", host.args(**dispatcher_args(host, target)),
                 env=module_env({"EBPF_DATAPATH_CRASH_AT": "after_compile"}))
    waiter = Run("dispatcher", host.args(**dispatcher_args(host, target, lock_timeout=60)))
    waiter.wait(timeout=120)
    doomed.wait(timeout=120)
    assert waiter.rc == 0 and waiter.result["changed"] is True, waiter.describe()
    # Killed, if it had the lock first; else it found the chain applied and had nothing to build.
    assert (doomed.rc == -9 and doomed.result is None) or (doomed.rc == 0 and doomed.result["changed"] is False), \
        doomed.describe()
    chain, recorded, kernel, info = running(host)
    assert chain == target and kernel == [recorded] and info["attached"] is True
    got, want = wait_for_objects(host)
    assert got["progs"] == want["progs"] and got["links"] == want["links"] and got["pins"] == want["pins"]


def _lock_pid(path):
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
