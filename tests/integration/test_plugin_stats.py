# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-plugin statistics (the dispatcher's ``stats: true``, issue 14) through
the real modules on this kernel, with real packets: the counts datapath_info
returns per plugin call match the traffic sent and what the plugins' own maps
counted."""

import os

import pytest

from modhost import DROP_PORT, OPEN_PORT, Host, place, udp_burst


@pytest.fixture
def host(lab, bpffs_root, state_dir):
    lab.quiet()
    return Host(lab, bpffs_root, state_dir)


def plugin_stats(host, name):
    info = host.run("datapath_info", dispatcher=name, stats=True)
    return dict(((s["hook"], s["plugin"], s["function"]), s) for s in info["dispatchers"][0].get("plugin_stats", []))


def test_tc_chain_counts_runs_and_verdicts_per_plugin(host, lab):
    for name, src in (("counter", "counter.c"), ("dropper", "dropper.c"), ("entry", "entry_programs.c"),
                      ("verdicts", "verdicts.c")):
        host.plugin(name, src)
    args = dict(name="st", attach="tc_ingress", tc_backend="tcx", mode="link", **place(lab, "b"),
                main={"plugin": "entry", "function": "cls_count"},
                plugins=[{"plugin": "counter", "function": "count", "priority": 10},
                         {"plugin": "dropper", "function": "drop_port", "priority": 20},
                         {"plugin": "verdicts", "function": "record", "hook": "post"}])
    first = host.run("dispatcher", **args)
    assert first["changed"] is True
    assert "plugin_stats" not in host.run("datapath_info", dispatcher="st", stats=True)["dispatchers"][0]

    # Turning statistics on is a rebuild; the same request again is not.
    on = host.run("dispatcher", stats=True, **args)
    assert on["changed"] is True and on["generation"] == first["generation"] + 1
    assert host.run("dispatcher", stats=True, **args)["changed"] is False
    gen_dir = os.path.join(host.bpffs_root, "dispatchers", "st", "gen-%d" % on["generation"])
    assert os.path.exists(os.path.join(gen_dir, "stats"))

    assert udp_burst(lab, DROP_PORT, 5) == 0
    assert udp_burst(lab, OPEN_PORT, 7) == 7
    stats = plugin_stats(host, "st")
    counter = stats[("pre", "counter", "count")]
    dropper = stats[("pre", "dropper", "drop_port")]
    main = stats[("main", "entry", "cls_count")]
    post = stats[("post", "verdicts", "record")]
    # Other packets (neighbour discovery) may pass too: compare with what the plugins counted themselves.
    seen = host.counter("counter")
    assert seen >= 12 and counter["runs"] == seen and counter["continue"] == seen
    assert sum(counter["runs_per_cpu"]) == seen
    assert dropper["runs"] == seen and dropper["verdicts"] == {"TC_ACT_SHOT": 5} and dropper["continue"] == seen - 5
    assert main["runs"] == seen - 5 and main["verdicts"] == {"TC_ACT_OK": seen - 5}
    assert post["runs"] == seen - 5 and post["continue"] == seen - 5
    assert [s["hook"] for s in host.run("datapath_info", dispatcher="st", stats=True)["dispatchers"][0][
        "plugin_stats"]] == ["pre", "pre", "main", "post"]

    # Off again: a rebuild without the map; the generation with stats is kept for rollback.
    off = host.run("dispatcher", **args)
    assert off["changed"] is True
    assert "plugin_stats" not in host.run("datapath_info", dispatcher="st", stats=True)["dispatchers"][0]
    host.run("dispatcher", name="st", state="absent")
    assert not os.path.exists(os.path.join(host.bpffs_root, "dispatchers", "st"))


def test_xdp_chain_counts_verdicts_by_xdp_name(host, lab):
    host.plugin("counter", "counter.c")
    host.plugin("dropper", "dropper.c")
    args = dict(name="sx", attach="xdp", mode="link", stats=True, **place(lab, "b"),
                plugins=[{"plugin": "dropper", "function": "drop_port_xdp", "priority": 10},
                         {"plugin": "counter", "function": "count_xdp", "priority": 20}])
    host.run("dispatcher", **args)
    assert udp_burst(lab, DROP_PORT, 3) == 0
    assert udp_burst(lab, OPEN_PORT, 2) == 2
    stats = plugin_stats(host, "sx")
    dropper = stats[("pre", "dropper", "drop_port_xdp")]
    assert dropper["verdicts"] == {"XDP_DROP": 3}
    assert stats[("pre", "counter", "count_xdp")]["runs"] == host.counter("counter") == dropper["continue"]
