# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generations: rollback as one swap, restore after a lost bpffs, pictures of a
chain, and the write-ahead record that lets a run killed between its swap and
its save be finished by the next one. Real modules, real packets.

Chain A counts with plugin `counter`, chain B with plugin `twin`: which counter
moves under traffic tells which chain runs.
"""

import os
import subprocess

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf

from modhost import Host, OPEN_PORT, place, udp_burst

ATTACH = [pytest.param("tcx", id="tcx"), pytest.param("clsact", id="clsact")]


@pytest.fixture
def host(lab, bpffs_root, state_dir):
    lab.quiet()
    h = Host(lab, bpffs_root, state_dir)
    h.plugin("counter", "counter.c")
    h.plugin("twin", "counter_twin.c")
    return h


def chain(plugin):
    return [{"plugin": plugin, "function": "count"}]


def apply(host, backend, plugin, **extra):
    return host.run("dispatcher", name="gw", attach="tc_ingress", tc_backend=backend, mode="link",
                    plugins=chain(plugin), **dict(place(host.lab, "b"), **extra))


def counting(host):
    """Which of the two plugins counts traffic now."""
    c0, t0 = host.counter("counter"), host.counter("twin")
    assert udp_burst(host.lab, OPEN_PORT, 5) == 5
    moved = [name for name, before in (("counter", c0), ("twin", t0)) if host.counter(name) - before == 5]
    untouched = [name for name, before in (("counter", c0), ("twin", t0)) if host.counter(name) == before]
    assert len(moved) == 1 and len(untouched) == 1, "exactly one chain must run"
    return moved[0]


@pytest.mark.parametrize("backend", ATTACH)
def test_rollback_is_one_swap_and_idempotent(host, backend):
    a = apply(host, backend, "counter")
    b = apply(host, backend, "twin")
    assert (a["generation"], b["generation"]) == (1, 2)
    assert counting(host) == "twin"

    info = host.run("datapath_info", dispatcher="gw")["dispatchers"][0]
    assert [(g["number"], g["current"], g["pinned"]) for g in info["generations"]] == [(1, False, True), (2, True, True)]

    preview = host.run("datapath_rollback", dispatcher="gw", _check=True)
    assert preview["changed"] is True and preview["dispatchers"] == [{"name": "gw", "from": 2, "to": 1, "changed": True}]
    assert "twin.count" in preview["diff"]["before"] and "counter.count" in preview["diff"]["after"]
    assert counting(host) == "twin", "check mode must not swap"

    back = host.run("datapath_rollback", dispatcher="gw", generation=1)
    assert back["changed"] is True
    assert counting(host) == "counter"
    info = host.run("datapath_info", dispatcher="gw")["dispatchers"][0]
    assert info["attached"] is True and info["generation"] == 1 and info["prog_id"] == a["prog_id"]
    # Naming the running generation again changes nothing.
    assert host.run("datapath_rollback", dispatcher="gw", generation=1)["changed"] is False
    # The recipe came back too: asking for chain A is no change, chain B is a new generation.
    assert apply(host, backend, "counter")["changed"] is False
    again = apply(host, backend, "twin")
    assert again["changed"] is True and again["generation"] == 3
    assert counting(host) == "twin"

    # Nothing older than the oldest kept generation; unknown numbers are named.
    missing = host.run("datapath_rollback", dispatcher="gw", generation=9, _fail=True)
    assert "no generation 9" in missing["msg"] and "1, 2, 3" in missing["msg"]
    host.run("dispatcher", name="gw", state="absent")
    assert not os.path.exists(os.path.join(host.bpffs_root, "dispatchers"))


def test_rollback_of_every_dispatcher_and_nothing_older(host):
    first = host.run("datapath_rollback", _fail=False)
    assert first["changed"] is False and first["dispatchers"] == []
    apply(host, "tcx", "counter")
    refused = host.run("datapath_rollback", dispatcher="gw", _fail=True)
    assert "no generation older than 1" in refused["msg"]
    apply(host, "tcx", "twin")
    every = host.run("datapath_rollback")
    assert every["dispatchers"] == [{"name": "gw", "from": 2, "to": 1, "changed": True}]
    assert counting(host) == "counter"


@pytest.mark.parametrize("backend", ATTACH)
def test_restore_after_bpffs_loss(host, backend):
    apply(host, backend, "counter")
    apply(host, backend, "twin")
    assert host.run("datapath_restore")["changed"] is False, "nothing to restore on a healthy host"
    # A reboot empties bpffs: every pin of ours goes (tcx links go with their
    # pins; a clsact filter would go with the reboot, here it keeps running).
    subprocess.run(["rm", "-rf", "--one-file-system", host.bpffs_root], check=True)
    preview = host.run("datapath_restore", _check=True)
    assert preview["changed"] is True and preview["plugins"] == ["counter", "twin"]
    assert not os.path.exists(host.bpffs_root), "check mode must not pin"
    restored = host.run("datapath_restore")
    assert restored["changed"] is True
    assert restored["dispatchers"] == [{"name": "gw", "changed": True, "generation": 3}]
    assert counting(host) == "twin", "the chain that ran before the loss runs again, counting into new pins"
    info = host.run("datapath_info", dispatcher="gw")["dispatchers"][0]
    assert info["attached"] is True
    assert [g["number"] for g in info["generations"]] == [3], "generations whose pins are gone are forgotten"
    assert host.run("datapath_restore")["changed"] is False
    assert apply(host, backend, "twin")["changed"] is False, "the playbook's rerun converges the same way"


def test_restore_after_a_rollback_never_reuses_a_generation_number(host):
    """Generations 1 and 2 applied, rolled back to 1, then a reboot: the chain
    restore rebuilds gets a new number (3), not 2 again (issue 16)."""
    apply(host, "tcx", "counter")
    apply(host, "tcx", "twin")
    assert host.run("datapath_rollback", dispatcher="gw")["dispatchers"][0]["to"] == 1
    subprocess.run(["rm", "-rf", "--one-file-system", host.bpffs_root], check=True)
    restored = host.run("datapath_restore")
    assert restored["dispatchers"] == [{"name": "gw", "changed": True, "generation": 3}]
    assert counting(host) == "counter", "the rolled-back chain runs again"
    assert apply(host, "tcx", "twin")["generation"] == 4


def test_pictures(host):
    apply(host, "tcx", "counter")
    apply(host, "tcx", "twin")
    dot = host.run("datapath_info", render="graphviz")["diagrams"]["gw"]
    assert dot.startswith('digraph "gw" {') and 'label="twin.count"' in dot
    assert "in -> pre0 -> main -> out;" in dot and "generations: 1, 2 (running)" in dot
    mermaid = host.run("datapath_info", render="mermaid")["diagrams"]["gw"]
    assert mermaid.startswith("flowchart LR") and "d_gw_pre0" in mermaid and "twin.count" in mermaid
    # Graphviz reads it (make setup installs graphviz).
    out = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout
    assert "twin.count" in out


@pytest.mark.parametrize("backend", ATTACH)
def test_killed_between_swap_and_save_is_finished_by_the_next_run(host, backend):
    apply(host, backend, "counter")
    # run_module passes the environment on: the module kills itself after its swap.
    os.environ["EBPF_DATAPATH_CRASH_AT"] = "after_swap"
    try:
        with pytest.raises(AssertionError, match="printed no JSON"):
            apply(host, backend, "twin")
    finally:
        del os.environ["EBPF_DATAPATH_CRASH_AT"]
    assert counting(host) == "twin", "the killed run had swapped"
    before = set(libbpf.prog_ids())
    done = apply(host, backend, "twin")
    assert done["changed"] is True
    assert counting(host) == "twin"
    info = host.run("datapath_info", dispatcher="gw")["dispatchers"][0]
    assert info["attached"] is True
    if backend == "clsact":
        # One filter only: the killed run's program was replaced, not joined.
        out = subprocess.run(["tc", "-n", host.lab.ns_b, "-j", "filter", "show", "dev", host.lab.if_b, "ingress"],
                             capture_output=True, text=True, check=True).stdout
        assert out.count('"prog":{') == 1, out
    # The orphaned program is gone from the kernel: no more programs than before.
    assert len(set(libbpf.prog_ids()) - before) <= 1
