# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plugin settings, tail calls, per-plugin statistics and the chain's one
parse in freplace mode, on
a kernel that loads BPF_PROG_TYPE_EXT programs (the VM tier; link mode is
proven on the host: tests/integration/test_plugin_settings.py,
test_tail_calls.py, test_plugin_stats.py).

The chain (tests/freplace_cases.py feature_chain): two instances of
configurable.c with different settings at pre (cfg_a drops UDP to 7777,
cfg_b counts UDP to 8888 adding data_step 5, parsed.c reading the parse),
tailcalls.c's entry program as main, tail-calling its stage_drop for UDP to
7004 (set by config) and stage_pass for the rest, the verdicts post hook and
parsed.c's, statistics on. Every object
comes from the compile cache the host tier filled
(tests/integration/test_freplace_build.py)."""

import os

from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher_stats
from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine
from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Chain, FunctionRef
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

import freplace_cases as cases

from modhost import DROP_PORT, OPEN_PORT, place, udp_burst

MATCHED, SUM, DROPPED = 1, 2, 3


def test_settings_tail_calls_and_statistics_in_freplace_mode(lab, bpffs_root, state_dir):
    lab.quiet()

    def counter(plugin, key, mapname="counts"):
        return read_pinned(os.path.join(bpffs_root, "plugins", plugin, "maps", mapname)).get(key, 0)

    def engine():
        return Engine(bpffs_root, state_dir, run=run_subprocess)

    with engine() as eng:
        cases.install_features(eng)
    attach, main, hooks = cases.feature_chain()
    spec = dict(name="feat", attach=attach, mode="freplace", tc_backend="clsact", main=main, position=None,
                strict_constraints=False, keep_generations=3, hooks=hooks, stats=True, **place(lab, "b"))
    with engine() as eng:
        first = eng.ensure_dispatcher(spec)
    assert first["changed"] and first["mode"] == "freplace"
    gen_dir = os.path.join(bpffs_root, "dispatchers", "feat", "gen-%d" % first["generation"])
    assert sorted(os.listdir(os.path.join(gen_dir, "ext"))) == [
        "dp_main", "dp_post_0", "dp_post_1", "dp_pre_0", "dp_pre_1", "dp_pre_2"]

    assert udp_burst(lab, DROP_PORT, 3) == 0, "cfg_a (match_port 7777, ACTION_DROP) drops"
    assert udp_burst(lab, OPEN_PORT, 2) == 2, "cfg_b only counts; main's stage_pass passes"
    assert udp_burst(lab, cases.TAIL_DROP_PORT, 2) == 0, "main tail-calls stage_drop for its configured port"
    assert [counter("cfg_a", k) for k in (MATCHED, DROPPED)] == [3, 3]
    assert [counter("cfg_b", k) for k in (MATCHED, SUM, DROPPED)] == [2, 4 * 5, 0]
    assert [counter("tails", k) for k in range(4)] == [4, 2, 2, 0], "entry, stage_pass, stage_drop, failed"
    # The post hook ran after main's tail call returned, with the stage's verdict.
    assert counter("verdicts", 2, "seen") == 2 and counter("verdicts", 0, "seen") == 2
    # parsed.c read the dispatcher's one parse at pre (the 4 packets cfg_a let
    # on, all IPv4, the last to the stage port) and at post.
    assert [counter("parsed", k) for k in range(6)] == [4, 4, 0, 0, cases.TAIL_DROP_PORT, 4]

    calls = dispatcher_stats.counted_calls(Chain(first["chain"]["pre"], first["chain"]["post"]),
                                           FunctionRef(main["plugin"], main["function"]))
    stats = dict(((s["hook"], s["plugin"]), s) for s in dispatcher_stats.read(
        os.path.join(gen_dir, "stats"), "tc", calls))
    assert stats[("pre", "cfg_a")]["verdicts"] == {"TC_ACT_SHOT": 3}
    assert stats[("pre", "cfg_b")]["continue"] == stats[("pre", "cfg_b")]["runs"] == 4
    assert stats[("main", "tails")]["verdicts"] == {"TC_ACT_OK": 2, "TC_ACT_SHOT": 2}
    assert stats[("post", "verdicts")]["continue"] == 4
    assert stats[("pre", "parsed")]["continue"] == stats[("post", "parsed")]["continue"] == 4

    # New settings for cfg_b: its dispatcher is rebuilt (freplace) and drops.
    with engine() as eng:
        changed, _record = eng.ensure_plugin("cfg_b", src=os.path.join(cases.TESTDATA, "configurable.c"),
                                             config={"match_port": 8888, "data_step": 5, "action": "ACTION_DROP"})
        assert changed
    with engine() as eng:
        again = eng.ensure_dispatcher(spec)
    assert again["changed"] is False and again["generation"] == first["generation"] + 1
    assert udp_burst(lab, OPEN_PORT, 2) == 0
    assert counter("cfg_b", DROPPED) == 2 and counter("tails", 0) == 4
    with engine() as eng:
        assert eng.remove_dispatcher("feat")["changed"]


def test_each_generation_keeps_its_tail_call_targets_in_freplace_mode(lab, bpffs_root, state_dir):
    """tail_marks.c's stage counts in marks[mark]: each build loads it, with its
    settings, into a prog array of its own (the plugin's extension object), so
    a rollback brings back generation 1's stage with generation 1's chain
    (tests/integration/test_tail_calls.py proves it in link and inline mode)."""
    lab.quiet()
    name, src = cases.MARKS_PLUGIN
    src = os.path.join(cases.TESTDATA, src)

    def marks():
        pinned = read_pinned(os.path.join(bpffs_root, "plugins", name, "maps", "marks"))
        return [pinned.get(k, 0) for k in range(4)]

    def engine():
        return Engine(bpffs_root, state_dir, run=run_subprocess)

    with engine() as eng:
        eng.ensure_plugin(name, src=src, config={"mark": 1})
    attach, main, hooks = cases.marks_chain()
    spec = dict(name="marks", attach=attach, mode="freplace", tc_backend="clsact", main=main, position=None,
                strict_constraints=False, keep_generations=3, hooks=hooks, **place(lab, "b"))
    with engine() as eng:
        first = eng.ensure_dispatcher(spec)
    assert first["changed"] and first["mode"] == "freplace"
    assert udp_burst(lab, OPEN_PORT, 3) == 3
    assert marks() == [0, 3, 0, 0]
    with engine() as eng:
        assert eng.ensure_plugin(name, src=src, config={"mark": 2})[0]
    assert udp_burst(lab, OPEN_PORT, 2) == 2
    assert marks() == [0, 3, 2, 0]
    with engine() as eng:
        back = eng.rollback("marks")
    assert back["changed"] and back["to"] == first["generation"]
    assert udp_burst(lab, OPEN_PORT, 4) == 4
    assert marks() == [0, 7, 2, 0], "generation 1's stage (mark 1) runs again"
    with engine() as eng:
        assert eng.remove_dispatcher("marks")["changed"]
        eng.remove_plugin(name)
