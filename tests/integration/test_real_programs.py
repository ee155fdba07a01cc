# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Programs written the way published projects write them, through the modules,
on this kernel, with real packets (issue 13).

- Maps declared ``__uint(pinning, LIBBPF_PIN_BY_NAME)``: libbpf's default pins
  them at /sys/fs/bpf/<name>; the collection must keep them under the plugin's
  directory in bpffs_root, reuse them across rebuilds and remove them with the
  plugin. The oracle is the set of pins under /sys/fs/bpf outside every test's
  own root, read before and after each step.
"""

import json
import os

import pytest

from modhost import DROP_PORT, OPEN_PORT, TESTDATA, Host, place, udp_burst

BPFFS = "/sys/fs/bpf"
# Top-level entries of /sys/fs/bpf that belong to test runs (this one's root
# and those of tests and benchmarks running in parallel), not to the host.
_TEST_ROOTS = ("dpt-", "ebpf-datapath-test-attach-", "dpbench-", "inl-")


@pytest.fixture
def host(lab, bpffs_root, state_dir):
    lab.quiet()
    return Host(lab, bpffs_root, state_dir)


def pins_outside_test_roots():
    """Every path under /sys/fs/bpf but the test roots' trees."""
    found = set()
    for top in os.listdir(BPFFS):
        if top.startswith(_TEST_ROOTS):
            continue
        path = os.path.join(BPFFS, top)
        found.add(path)
        for dirpath, dirnames, filenames in os.walk(path):
            found.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return found


def test_pin_by_name_maps_stay_under_bpffs_root(host, lab):
    outside = pins_outside_test_roots()
    name = "pbn"
    pin = os.path.join(host.bpffs_root, "plugins", name, "maps", "pinned_counts")

    installed = host.plugin(name, "pinned_by_name.c")
    assert installed["plugin"]["maps"] == {"pinned_counts": pin}
    assert os.path.exists(pin)
    assert pins_outside_test_roots() == outside, "installing the plugin pinned something outside bpffs_root"

    args = dict(name="pbn-d", attach="tc_ingress", tc_backend="tcx", mode="link", **place(lab, "b"),
                plugins=[{"plugin": name, "function": "count_pinned"}])
    assert host.run("dispatcher", **args)["changed"] is True
    assert pins_outside_test_roots() == outside, "building the dispatcher pinned something outside bpffs_root"
    assert udp_burst(lab, OPEN_PORT, 6) == 6
    assert host.counter(name, "pinned_counts") == 6

    # A rebuild (a second plugin joins the chain) reuses the pinned map: the count survives and grows.
    host.plugin("counter", "counter.c")
    args["plugins"] = args["plugins"] + [{"plugin": "counter", "function": "count"}]
    rebuilt = host.run("dispatcher", **args)
    assert rebuilt["changed"] is True and rebuilt["generation"] == 2
    assert host.counter(name, "pinned_counts") == 6, "the rebuild lost the pinned-by-name map's count"
    assert udp_burst(lab, OPEN_PORT, 4) == 4
    assert host.counter(name, "pinned_counts") == 10
    assert host.counter("counter") == 4
    assert pins_outside_test_roots() == outside

    # Removal takes the map with the plugin; a reinstall starts from a new, empty
    # map and the program counts into that one (not into a leftover pin).
    host.run("dispatcher", name="pbn-d", state="absent")
    host.run("datapath_plugin", name=name, state="absent")
    assert not os.path.exists(pin)
    assert pins_outside_test_roots() == outside, "removal left a pin outside bpffs_root"
    host.plugin(name, "pinned_by_name.c")
    args["plugins"] = args["plugins"][:1]
    host.run("dispatcher", **args)
    assert host.counter(name, "pinned_counts") == 0
    assert udp_burst(lab, OPEN_PORT, 3) == 3
    assert host.counter(name, "pinned_counts") == 3
    host.run("dispatcher", name="pbn-d", state="absent")
    host.run("datapath_plugin", name=name, state="absent")
    host.run("datapath_plugin", name="counter", state="absent")
    assert pins_outside_test_roots() == outside


# --------------------------------------------------------------------------
# Entry programs (SEC("tc"), SEC("classifier"), SEC("tcx/ingress"), SEC("xdp"))
# as main and as hooks, link mode. Slots of entry_programs.c's `seen` map:
TC_DROP, CLS, TCX, XDP_DROP = 0, 1, 2, 3


def seen(host, slot, plugin="entry"):
    return host.counter(plugin, "seen", slot)


def test_entry_program_as_main_gives_the_main_verdict(host, lab):
    host.plugin("entry", "entry_programs.c")
    host.plugin("counter", "counter.c")
    host.plugin("verdicts", "verdicts.c")
    args = dict(name="em", attach="tc_ingress", tc_backend="tcx", mode="link", **place(lab, "b"),
                main={"plugin": "entry", "function": "tc_drop_port"},
                plugins=[{"plugin": "counter", "function": "count"},
                         {"plugin": "verdicts", "function": "record", "hook": "post"}])
    assert host.run("dispatcher", **args)["changed"] is True
    assert udp_burst(lab, DROP_PORT, 5) == 0, "main's TC_ACT_SHOT must drop"
    assert udp_burst(lab, OPEN_PORT, 4) == 4
    assert seen(host, TC_DROP) == 9 and host.counter("counter") == 9, "pre hook and main saw every packet"
    # The post hook received main's own verdicts: TC_ACT_SHOT (2) five times, TC_ACT_OK (0) four times.
    assert host.counter("verdicts", "seen", 2) == 5 and host.counter("verdicts", "seen", 0) == 4
    assert host.run("dispatcher", **args)["changed"] is False


def test_entry_programs_as_hooks_pass_continues_other_verdicts_end(host, lab):
    host.plugin("entry", "entry_programs.c")
    host.plugin("counter", "counter.c")
    args = dict(name="eh", attach="tc_ingress", tc_backend="clsact", mode="link", **place(lab, "b"),
                plugins=[{"plugin": "entry", "function": "cls_count", "priority": 10},
                         {"plugin": "entry", "function": "tc_drop_port", "priority": 20},
                         {"plugin": "counter", "function": "count", "priority": 30},
                         {"plugin": "entry", "function": "tcx_count", "hook": "post"}])
    result = host.run("dispatcher", **args)
    assert result["chain"]["pre"] == [["entry", "cls_count"], ["entry", "tc_drop_port"], ["counter", "count"]]
    assert udp_burst(lab, DROP_PORT, 6) == 0
    assert udp_burst(lab, OPEN_PORT, 3) == 3
    # cls_count's TC_ACT_OK let every packet on; tc_drop_port's TC_ACT_SHOT ended
    # the chain for the six drops: counter and the post hook saw only the three others.
    assert seen(host, CLS) == 9 and seen(host, TC_DROP) == 9
    assert host.counter("counter") == 3 and seen(host, TCX) == 3

    # An entry program at post ends the chain with its own verdict too.
    args["plugins"] = [{"plugin": "counter", "function": "count"},
                       {"plugin": "entry", "function": "tc_drop_port", "hook": "post"}]
    assert host.run("dispatcher", **args)["changed"] is True
    assert udp_burst(lab, DROP_PORT, 2) == 0
    assert udp_burst(lab, OPEN_PORT, 2) == 2
    assert host.counter("counter") == 7


def test_xdp_entry_program_as_main_and_hook(host, lab):
    host.plugin("entry", "entry_programs.c")
    host.plugin("counter", "counter.c")
    host.plugin("verdicts", "verdicts.c")
    args = dict(name="ex", attach="xdp", mode="link", **place(lab, "b"),
                main={"plugin": "entry", "function": "xdp_drop_port"},
                plugins=[{"plugin": "counter", "function": "count_xdp"},
                         {"plugin": "verdicts", "function": "record_xdp", "hook": "post"}])
    host.run("dispatcher", **args)
    assert udp_burst(lab, DROP_PORT, 4) == 0
    assert udp_burst(lab, OPEN_PORT, 3) == 3
    assert seen(host, XDP_DROP) == 7 and host.counter("counter") == 7
    assert host.counter("verdicts", "seen", 1) == 4 and host.counter("verdicts", "seen", 2) == 3  # XDP_DROP, XDP_PASS
    # As a pre hook: XDP_PASS continues to the counter, XDP_DROP ends the chain.
    args.pop("main")
    args["plugins"] = [{"plugin": "entry", "function": "xdp_drop_port", "priority": 10},
                       {"plugin": "counter", "function": "count_xdp", "priority": 20}]
    host.run("dispatcher", **args)
    assert udp_burst(lab, DROP_PORT, 2) == 0
    assert udp_burst(lab, OPEN_PORT, 2) == 2
    assert host.counter("counter") == 9 and seen(host, XDP_DROP) == 11


def test_entry_programs_refused_where_they_cannot_run(host, lab, tmp_path):
    host.plugin("entry", "entry_programs.c")
    base = dict(attach="tc_ingress", mode="link", **place(lab, "b"))
    wrong = host.run("dispatcher", name="ew", _fail=True,
                     **dict(base, plugins=[{"plugin": "entry", "function": "xdp_drop_port"}]))
    assert "SEC(\"xdp\")" in wrong["msg"] and "tc attach point" in wrong["msg"]
    # A prebuilt object keeps its entry programs programs of their own: link mode cannot call them.
    state_dir = host.common["state_dir"]
    with open(os.path.join(state_dir, "registry.json")) as handle:
        plain_sha = json.load(handle)["plugins"]["entry"]["plain_sha256"]
    copy = tmp_path / "prebuilt.o"
    with open(os.path.join(state_dir, "objects", plain_sha + ".o"), "rb") as handle:
        copy.write_bytes(handle.read())
    os.chmod(str(copy), 0o644)
    host.run("datapath_plugin", name="pre", object=str(copy))
    refused = host.run("dispatcher", name="ew", _fail=True,
                       **dict(base, plugins=[{"plugin": "pre", "function": "tc_drop_port"}]))
    assert "cannot be linked" in refused["msg"] and "freplace" in refused["msg"]
    assert not os.path.exists(os.path.join(host.bpffs_root, "dispatchers"))


# --------------------------------------------------------------------------
# Install-time verification: a function the verifier refuses fails the plugin's
# install, naming plugin, function and source line, and nothing changes.

def _plugin_state(host):
    state_dir = host.common["state_dir"]
    objects = os.path.join(state_dir, "objects")
    with open(os.path.join(state_dir, "registry.json")) as handle:
        plugins = json.load(handle)["plugins"]
    return (plugins, sorted(os.listdir(objects)) if os.path.isdir(objects) else [],
            sorted(os.path.join(d, f) for d, _dirs, files in os.walk(host.bpffs_root) for f in files))


@pytest.mark.parametrize("src,function,line", [("unsafe.c", "peek", "unsafe.c:11"),
                                               ("unsafe_entry.c", "peek_entry", "unsafe_entry.c:18")],
                         ids=["hook-function", "entry-program"])
def test_a_verifier_refusal_fails_the_install_and_changes_nothing(host, src, function, line):
    host.plugin("counter", "counter.c")
    outside = pins_outside_test_roots()
    before = _plugin_state(host)
    for check in (True, False):
        res = host.run("datapath_plugin", _fail=True, _check=check, name="bad", src=os.path.join(TESTDATA, src))
        assert "plugin 'bad'" in res["msg"] and "refuses function '%s'" % function in res["msg"]
        assert line in res["msg"] and "invalid access to packet" in res["msg"], res["msg"]
        assert _plugin_state(host) == before
    # New code for an installed plugin is verified the same way; the old code stays.
    res = host.run("datapath_plugin", _fail=True, name="counter", src=os.path.join(TESTDATA, src))
    assert "refuses function '%s'" % function in res["msg"]
    assert _plugin_state(host) == before
    assert pins_outside_test_roots() == outside


def test_verdict_final_makes_an_entry_programs_pass_end_the_chain(host, lab):
    host.plugin("entry", "entry_programs.c")
    host.plugin("counter", "counter.c")
    base = dict(name="ef", attach="tc_ingress", tc_backend="tcx", mode="link", **place(lab, "b"))
    chain = [{"plugin": "entry", "function": "cls_count", "priority": 10},
             {"plugin": "entry", "function": "tc_drop_port", "priority": 20},
             {"plugin": "counter", "function": "count", "priority": 30}]
    host.run("dispatcher", plugins=chain, **base)
    assert udp_burst(lab, DROP_PORT, 2) == 0  # default: cls_count's pass continues to the dropper
    # verdict: final on cls_count, per hook task: its TC_ACT_OK now ends the chain.
    hooked = host.run("datapath_hook", dispatcher="ef", plugin="entry", function="cls_count", priority=10,
                      verdict="final")
    assert hooked["changed"] is True
    c0, d0 = host.counter("counter"), seen(host, TC_DROP)
    assert udp_burst(lab, DROP_PORT, 3) == 3, "the dropper no longer runs"
    assert host.counter("counter") == c0 and seen(host, TC_DROP) == d0 and seen(host, CLS) == 5
    assert host.run("datapath_hook", dispatcher="ef", plugin="entry", function="cls_count", priority=10,
                    verdict="final")["changed"] is False
    # The bulk form reaches the same state; without the option the chain is as before.
    final_chain = [dict(chain[0], verdict="final")] + chain[1:]
    assert host.run("dispatcher", plugins=final_chain, **base)["changed"] is False
    assert host.run("dispatcher", plugins=chain, **base)["changed"] is True
    assert udp_burst(lab, DROP_PORT, 2) == 0
    # A hook function (DP_CONTINUE ABI) cannot be final.
    refused = host.run("dispatcher", _fail=True, plugins=chain[:2] + [dict(chain[2], verdict="final")], **base)
    assert "verdict final applies to entry programs" in refused["msg"]
