# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mode: inline through the real modules on this kernel, with real packets
(issue 14): what the other modes do (rollback, restore, statistics, settings)
works inline; a chain that does not build inline is a clear error with mode
inline and a fall-back to the next mode with mode auto, remembered so a rerun
does not try again. The core assertions (order, reorder, check mode, failures,
removal, 64 plugins) run inline in test_datapath.py."""

import os

import pytest

from modhost import DROP_PORT, OPEN_PORT, Host, place, registry_bytes, udp_burst

# bulky.c's hook is about 2,500 instructions: sixteen of them put the chain's
# exit further than a BPF jump reaches at -mcpu=v3 (32,767 instructions).
BULKY = ["b%02d" % i for i in range(16)]


@pytest.fixture
def host(lab, bpffs_root, state_dir):
    lab.quiet()
    return Host(lab, bpffs_root, state_dir)


def chain(lab, mode, **kw):
    return dict(name="il", attach="tc_ingress", tc_backend="tcx", mode=mode, **place(lab, "b"),
                plugins=[{"plugin": "counter", "function": "count", "priority": 10},
                         {"plugin": "dropper", "function": "drop_port", "priority": 20},
                         {"plugin": "verdicts", "function": "record", "hook": "post"}], **kw)


def test_inline_generations_rollback_restore_and_statistics(host, lab):
    for name, src in (("counter", "counter.c"), ("dropper", "dropper.c"), ("verdicts", "verdicts.c")):
        host.plugin(name, src)
    first = host.run("dispatcher", **chain(lab, "inline"))
    assert first["changed"] and first["mode"] == "inline" and first["generation"] == 1
    assert udp_burst(lab, DROP_PORT, 3) == 0 and udp_burst(lab, OPEN_PORT, 2) == 2
    assert host.counter("counter") == 5

    # Generation 2 without the dropper: everything passes; counts survive the swap.
    args = chain(lab, "inline")
    args["plugins"] = [args["plugins"][0], args["plugins"][2]]
    second = host.run("dispatcher", stats=True, **args)
    assert second["generation"] == 2 and second["mode"] == "inline"
    assert udp_burst(lab, DROP_PORT, 2) == 2 and host.counter("counter") == 7
    stats = host.run("datapath_info", dispatcher="il", stats=True)["dispatchers"][0]["plugin_stats"]
    assert [(s["hook"], s["plugin"], s["runs"]) for s in stats] == [("pre", "counter", 2), ("post", "verdicts", 2)]

    # Rollback to generation 1 is one swap to its pinned program: the dropper is back.
    back = host.run("datapath_rollback", dispatcher="il", generation=1)
    assert back["changed"] is True
    assert udp_burst(lab, DROP_PORT, 2) == 0 and host.counter("counter") == 9
    assert host.run("dispatcher", **chain(lab, "inline"))["changed"] is False

    # Restore after the pins are lost (a reboot): the inline chain is built again.
    host.run("dispatcher", name="il", state="absent")
    host.run("dispatcher", **chain(lab, "inline"))
    restored = host.run("datapath_restore")
    assert restored["changed"] is False, "the running chain needs nothing"


def test_a_chain_too_long_to_inline(host, lab, state_dir):
    """Past the longest chain that builds inline: mode inline says why and
    changes nothing; mode auto builds link instead, says so, and a rerun
    neither tries inline again nor changes anything."""
    for name in BULKY:
        host.plugin(name, "bulky.c")
    plugins = [{"plugin": n, "function": "churn", "priority": i} for i, n in enumerate(BULKY)]
    base = dict(name="long", attach="tc_ingress", tc_backend="tcx", plugins=plugins, **place(lab, "b"))

    failed = host.run("dispatcher", mode="inline", _fail=True, **base)
    assert "too long to inline" in failed["msg"] and "use mode: link" in failed["msg"]
    assert not os.path.exists(os.path.join(host.bpffs_root, "dispatchers", "long"))

    auto = host.run("dispatcher", mode="auto", **base)
    assert auto["changed"] is True and auto["mode"] == "link"
    assert "too long to inline" in auto["mode_reason"]
    # Module warnings are dicts in newer ansible-core, strings in older ones.
    assert any("mode auto built link, not inline" in str(w) for w in auto.get("warnings", []))
    assert udp_burst(lab, OPEN_PORT, 3) == 3
    before = registry_bytes(state_dir)
    again = host.run("dispatcher", mode="auto", **base)
    assert again["changed"] is False and again["mode"] == "link" and not again.get("warnings")
    assert registry_bytes(state_dir) == before

    # A shorter chain builds inline again (the refusal was for that chain only).
    auto = host.run("dispatcher", mode="auto", **dict(base, plugins=plugins[:4]))
    assert auto["changed"] is True and auto["mode"] == "inline"
    assert udp_burst(lab, OPEN_PORT, 2) == 2


def test_settings_and_tail_calls_inline(host, lab):
    host.plugin("cfg", "configurable.c", config={"match_port": DROP_PORT, "action": "ACTION_DROP"})
    host.plugin("tails", "tailcalls.c", config={"drop_port": OPEN_PORT})
    args = dict(name="ic", attach="tc_ingress", tc_backend="tcx", mode="inline", **place(lab, "b"),
                main={"plugin": "tails", "function": "tc_stages"},
                plugins=[{"plugin": "cfg", "function": "configured_check"}])
    assert host.run("dispatcher", **args)["mode"] == "inline"
    assert udp_burst(lab, DROP_PORT, 2) == 0, "cfg's settings hold inline"
    assert udp_burst(lab, OPEN_PORT, 3) == 0, "main's tail call to the stage its config names"
    assert udp_burst(lab, 9999, 1) == 1
    assert host.counter("tails", key=2) == 3 and host.counter("tails", key=1) == 1
    changed = host.plugin("cfg", "configurable.c", config={"match_port": DROP_PORT})
    assert changed["rebuilt"] == ["ic"]
    assert udp_burst(lab, DROP_PORT, 2) == 2
