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

    # A rebuild (the post hook taken out) keeps the prog array and the counts.
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
