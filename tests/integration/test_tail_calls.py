# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prog arrays and tail calls inside a plugin (issue 13), through the real
modules on this kernel, with real packets.

bpf/testdata/tailcalls.c: an entry program under SEC("tc") that tail-calls
through a prog array initialised declaratively (`.values = {...}`) into two
stages under their own SEC("tc"). Slots of its `counts` map: 0 entry ran,
1 stage_pass ran, 2 stage_drop ran, 3 a tail call failed.
"""

import json
import os
import shutil
import subprocess

import pytest

from modhost import OPEN_PORT, Host, place, udp_burst

ENTRY, STAGE_PASS, STAGE_DROP, FAILED = 0, 1, 2, 3
STAGE_PORT = 7003  # tailcalls.c's default drop_port


@pytest.fixture
def host(lab, bpffs_root, state_dir):
    lab.quiet()
    return Host(lab, bpffs_root, state_dir)


def slots(host):
    return [host.counter("tails", key=k) for k in (ENTRY, STAGE_PASS, STAGE_DROP, FAILED)]


def prog_array_ids(pin):
    """The program ids in a pinned prog array, by slot (bpftool reads them)."""
    out = subprocess.run([shutil.which("bpftool") or "bpftool", "-j", "map", "dump", "pinned", pin],
                         check=True, capture_output=True, text=True).stdout
    entries = json.loads(out)
    return dict((int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little"),
                 int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little")) for e in entries)


def test_tail_calling_entry_program_as_main_with_pre_and_post(host, lab):
    installed = host.plugin("tails", "tailcalls.c")["plugin"]
    pin = installed["maps"]["stages"]
    assert installed["prog_arrays"] == ["stages"]
    assert pin == os.path.join(host.bpffs_root, "plugins", "tails", "maps", "stages")
    assert sorted(prog_array_ids(pin)) == [0, 1], "the declared slots are filled at install"

    host.plugin("counter", "counter.c")
    host.plugin("verdicts", "verdicts.c")
    args = dict(name="tc-d", attach="tc_ingress", tc_backend="tcx", mode="link", **place(lab, "b"),
                main={"plugin": "tails", "function": "tc_stages"},
                plugins=[{"plugin": "counter", "function": "count"},
                         {"plugin": "verdicts", "function": "record", "hook": "post"}])
    assert host.run("dispatcher", **args)["changed"] is True
    assert udp_burst(lab, STAGE_PORT, 4) == 0, "stage_drop's TC_ACT_SHOT is main's verdict"
    assert udp_burst(lab, OPEN_PORT, 3) == 3
    assert slots(host) == [7, 3, 4, 0]
    assert host.counter("counter") == 7, "the pre hook ran for every packet"
    # The post hook ran after main's tail call returned: TC_ACT_SHOT (2) four times, TC_ACT_OK (0) three.
    assert host.counter("verdicts", "seen", 2) == 4 and host.counter("verdicts", "seen", 0) == 3
    assert host.run("dispatcher", **args)["changed"] is False

    # A rebuild (the post hook taken out) keeps the counts (its prog array is its own).
    args["plugins"] = [{"plugin": "counter", "function": "count"}]
    assert host.run("dispatcher", **args)["changed"] is True
    assert udp_burst(lab, STAGE_PORT, 2) == 0 and udp_burst(lab, OPEN_PORT, 2) == 2
    assert slots(host) == [11, 5, 6, 0]

    # New settings for the stages: the rebuilt dispatcher's tail calls use them.
    changed = host.plugin("tails", "tailcalls.c", config={"drop_port": OPEN_PORT})
    assert changed["changed"] is True and changed["rebuilt"] == ["tc-d"]
    assert udp_burst(lab, OPEN_PORT, 2) == 0 and udp_burst(lab, STAGE_PORT, 3) == 3
    assert slots(host) == [16, 8, 8, 0]
    assert host.plugin("tails", "tailcalls.c", config={"drop_port": OPEN_PORT})["changed"] is False

    # Removal takes the prog array with the plugin.
    host.run("dispatcher", name="tc-d", state="absent")
    host.run("datapath_plugin", name="tails", state="absent")
    assert not os.path.exists(pin)


def test_tail_calling_entry_program_as_a_pre_hook(host, lab):
    host.plugin("tails", "tailcalls.c")
    host.plugin("counter", "counter.c")
    args = dict(name="tc-h", attach="tc_ingress", tc_backend="clsact", mode="link", **place(lab, "b"),
                plugins=[{"plugin": "tails", "function": "tc_stages", "priority": 10},
                         {"plugin": "counter", "function": "count", "priority": 20}])
    assert host.run("dispatcher", **args)["changed"] is True
    assert udp_burst(lab, STAGE_PORT, 3) == 0
    assert udp_burst(lab, OPEN_PORT, 4) == 4
    # stage_pass's TC_ACT_OK lets the packet on to the counter; stage_drop's ends the chain.
    assert slots(host) == [7, 4, 3, 0]
    assert host.counter("counter") == 4


def prog_arrays_of(prog_id):
    """The ids of the prog arrays a program uses (bpftool reads them)."""
    bpftool = shutil.which("bpftool") or "bpftool"
    prog = json.loads(subprocess.run([bpftool, "-j", "prog", "show", "id", str(prog_id)], check=True,
                                     capture_output=True, text=True).stdout)
    out = set()
    for map_id in prog.get("map_ids", []):
        info = json.loads(subprocess.run([bpftool, "-j", "map", "show", "id", str(map_id)], check=True,
                                         capture_output=True, text=True).stdout)
        if info["type"] == "prog_array":
            out.add(map_id)
    return out


def pinned_map_id(pin):
    bpftool = shutil.which("bpftool") or "bpftool"
    return json.loads(subprocess.run([bpftool, "-j", "map", "show", "pinned", pin], check=True,
                                     capture_output=True, text=True).stdout)["id"]


@pytest.mark.parametrize("mode", ["link", "inline"])
def test_each_generation_tail_calls_its_own_targets(host, lab, mode):
    """bpf/testdata/tail_marks.c: main tail-calls a stage that counts the packet
    in marks[mark], mark a setting. Each build loads the stage with its own
    settings into a prog array of its own, so the swap changes chain and stage
    together, and a rollback brings back generation 1's stage: with one array
    shared by every build, the newest build's stage (mark 2) would stay."""
    def marks():
        return [host.counter("marks", "marks", k) for k in range(4)]

    installed = host.plugin("marks", "tail_marks.c", config={"mark": 1})["plugin"]
    args = dict(name="tc-m", attach="tc_ingress", tc_backend="tcx", mode=mode, **place(lab, "b"),
                main={"plugin": "marks", "function": "tc_jump"}, plugins=[])
    first = host.run("dispatcher", **args)
    assert first["changed"] is True and first["mode"] == mode
    assert udp_burst(lab, OPEN_PORT, 3) == 3
    assert marks() == [0, 3, 0, 0]

    changed = host.plugin("marks", "tail_marks.c", config={"mark": 2})
    assert changed["changed"] is True and changed["rebuilt"] == ["tc-m"]
    assert udp_burst(lab, OPEN_PORT, 2) == 2
    assert marks() == [0, 3, 2, 0]
    second = host.run("datapath_info", dispatcher="tc-m")["dispatchers"][0]

    back = host.run("datapath_rollback", dispatcher="tc-m")
    assert back["changed"] is True and back["dispatchers"][0]["to"] == first["generation"]
    assert udp_burst(lab, OPEN_PORT, 4) == 4
    assert marks() == [0, 7, 2, 0], "generation 1's stage (mark 1) runs again with generation 1"

    # Each generation's program uses a prog array of its own, none of them the
    # one the install filled (the plugin's pin).
    arrays_1, arrays_2 = prog_arrays_of(first["prog_id"]), prog_arrays_of(second["prog_id"])
    assert len(arrays_1) == len(arrays_2) == 1 and arrays_1 != arrays_2
    assert pinned_map_id(installed["maps"]["stage"]) not in arrays_1 | arrays_2
    host.run("dispatcher", name="tc-m", state="absent")
    host.run("datapath_plugin", name="marks", state="absent")


def test_tail_calls_survive_a_run_killed_between_swap_and_save(host, lab):
    """A dispatcher run killed after its swap leaves the attach point running
    a generation the registry does not list yet. The next run of any task
    keeps that generation's pins (here its prog array: unpinned, the kernel
    would empty it and main's tail call would fail), and the run that adopts
    it releases them once its own program runs."""
    def marks():
        return [host.counter("marks", "marks", k) for k in range(4)]

    host.plugin("marks", "tail_marks.c", config={"mark": 1})
    host.plugin("counter", "counter.c")
    args = dict(name="tc-k", attach="tc_ingress", tc_backend="tcx", mode="link", **place(lab, "b"),
                main={"plugin": "marks", "function": "tc_jump"}, plugins=[])
    first = host.run("dispatcher", **args)
    args["plugins"] = [{"plugin": "counter", "function": "count"}]
    os.environ["EBPF_DATAPATH_CRASH_AT"] = "after_swap"  # run_module hands the environment on
    try:
        with pytest.raises(AssertionError, match="printed no JSON"):
            host.run("dispatcher", **args)
    finally:
        del os.environ["EBPF_DATAPATH_CRASH_AT"]
    killed = os.path.join(host.bpffs_root, "dispatchers", "tc-k", "gen-%d" % (first["generation"] + 1))
    assert os.path.exists(os.path.join(killed, "tail", "marks", "stage"))

    host.plugin("other", "counter.c")  # another task's run: its recovery keeps the running generation
    assert os.path.exists(os.path.join(killed, "tail", "marks", "stage"))
    assert udp_burst(lab, OPEN_PORT, 3) == 3
    assert marks() == [0, 3, 0, 0] and host.counter("counter") == 3, "the killed run's chain, its tail call too"

    done = host.run("dispatcher", **args)
    assert done["changed"] is True and done["generation"] > first["generation"] + 1
    assert not os.path.exists(killed), "the adopted generation is released once replaced"
    assert udp_burst(lab, OPEN_PORT, 2) == 2
    assert marks() == [0, 5, 0, 0] and host.counter("counter") == 5
    host.run("dispatcher", name="tc-k", state="absent")


def test_moving_entry_programs_needs_no_failing_compile(tmp_path):
    """The tail-call targets are named in the prog array's initialiser, so they
    stay programs; the entry program that calls them moves to .text. Found
    without a compile that fails (failures are not cached): a rebuild of the
    same source starts no clang."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import plugin_store
    from ansible_collections.ebpf.datapath.plugins.module_utils.generated import Builder
    from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess
    from modhost import TESTDATA

    builder = Builder(str(tmp_path / "cache"), run_subprocess)
    src = os.path.join(TESTDATA, "tailcalls.c")
    first = plugin_store.build(builder, None, "tails", src=src)
    assert first.link_entries == ["tc_stages"]
    assert sorted(first.entries) == ["stage_drop", "stage_pass", "tc_stages"]
    assert builder.toolchain.clang_runs == 2, "the plain object and one namespaced compile"
    again = plugin_store.build(builder, None, "tails", src=src)
    assert builder.toolchain.clang_runs == 2 and again.same_build(first)
