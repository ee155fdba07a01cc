# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chains the freplace tests build, in one place.

The host tier builds their freplace objects (tests/integration/
test_freplace_build.py: this kernel refuses to load them, but clang and the
static linker run fine), which fills the shared compile cache; the VM tier
(tests/vm/test_freplace.py) then loads the very same objects in Debian's stock
kernel without running clang, which under emulation costs ~14 s a compile.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.path.join(ROOT, "bpf", "testdata")

PLUGINS = (("counter", "counter.c"), ("twin", "counter_twin.c"), ("dropper", "dropper.c"),
           ("verdicts", "verdicts.c"), ("entry", "entry_programs.c"))
KINDS = ("tc_ingress", "tc_egress", "xdp")
SIXTY_FOUR = ["p%02d" % i for i in range(64)]


def fn(name, attach):
    return name + "_xdp" if attach == "xdp" else name


def hooks(attach, twin_after_dropper=True):
    """The test chain: counter -> dropper -> twin (or twin first), a post hook."""
    entries = [
        {"plugin": "counter", "function": fn("count", attach), "hook": "pre", "priority": 50,
         "constraints": [{"order": "before", "plugin": "dropper"}]},
        {"plugin": "dropper", "function": fn("drop_port", attach), "hook": "pre", "priority": 50, "constraints": []},
        {"plugin": "twin", "function": fn("count", attach), "hook": "pre", "priority": 50,
         "constraints": [{"order": "after" if twin_after_dropper else "before", "plugin": "dropper"}]},
        {"plugin": "verdicts", "function": fn("record", attach), "hook": "post", "priority": 50, "constraints": []},
    ]
    return entries


def swap_hooks(i):
    """The two chains the 100-swap test alternates between."""
    order = [("counter", "count"), ("dropper", "drop_port"), ("twin", "count")]
    if i % 2:
        order = list(reversed(order))
    return [{"plugin": p, "function": f, "hook": "pre", "priority": n, "constraints": []}
            for n, (p, f) in enumerate(order)]


def sixty_four_hooks():
    return [{"plugin": n, "function": "count", "hook": "pre", "priority": 50, "constraints": []}
            for n in SIXTY_FOUR]


def all_chains():
    """(kind, hooks) of every chain the VM tier builds in freplace mode."""
    chains = []
    for attach in KINDS:
        chains += [(attach, hooks(attach)), (attach, hooks(attach, twin_after_dropper=False))]
    chains += [("tc_ingress", swap_hooks(0)), ("tc_ingress", swap_hooks(1)), ("tc_ingress", sixty_four_hooks())]
    return chains


def entry_chains():
    """(attach, main, hooks) of the chains with entry programs (issue 13): the
    entry program as main, an entry program and a hook function at pre and at
    post (entry_programs.c's `seen` slots: 0 tc_drop_port, 1 cls_count,
    2 tcx_count, 3 xdp_drop_port)."""
    def hook(plugin, function, where="pre", priority=50):
        return {"plugin": plugin, "function": function, "hook": where, "priority": priority, "constraints": []}
    return [
        ("tc_ingress", {"plugin": "entry", "function": "tc_drop_port"},
         [hook("counter", "count", priority=10), hook("entry", "cls_count", priority=20),
          hook("verdicts", "record", "post", 10), hook("entry", "tcx_count", "post", 20)]),
        ("xdp", {"plugin": "entry", "function": "xdp_drop_port"},
         [hook("counter", "count_xdp"), hook("verdicts", "record_xdp", "post")]),
    ]


def install(eng, names=None):
    """Install the test plugins (or the 64 copies of counter.c) with an Engine."""
    if names is None:
        for name, src in PLUGINS:
            eng.ensure_plugin(name, src=os.path.join(TESTDATA, src))
    else:
        for name in names:
            eng.ensure_plugin(name, src=os.path.join(TESTDATA, "counter.c"))


# Plugin settings, tail calls, per-plugin statistics and the chain's one parse
# (issues 13 and 14) in freplace mode: two instances of configurable.c with
# different settings and parsed.c's hook taking the parse as pre hooks,
# tailcalls.c's tail-calling entry program as main (its stage port set by
# config), two post hooks (one taking the parse), statistics on.
FEATURE_PLUGINS = (("cfg_a", "configurable.c", {"match_port": 7777, "action": "ACTION_DROP"}),
                   ("cfg_b", "configurable.c", {"match_port": 8888, "data_step": 5}),
                   ("tails", "tailcalls.c", {"drop_port": 7004}))
TAIL_DROP_PORT = 7004


def install_features(eng):
    for name, src, config in FEATURE_PLUGINS:
        eng.ensure_plugin(name, src=os.path.join(TESTDATA, src), config=config)
    eng.ensure_plugin("verdicts", src=os.path.join(TESTDATA, "verdicts.c"))
    eng.ensure_plugin("parsed", src=os.path.join(TESTDATA, "parsed.c"))


def feature_chain():
    """(attach, main, hooks) of the features chain."""
    def hook(plugin, function, where="pre", priority=50):
        return {"plugin": plugin, "function": function, "hook": where, "priority": priority, "constraints": []}
    return ("tc_ingress", {"plugin": "tails", "function": "tc_stages"},
            [hook("cfg_a", "configured_check", priority=10), hook("cfg_b", "configured_check", priority=20),
             hook("parsed", "parsed_drop", priority=30), hook("verdicts", "record", "post", 10),
             hook("parsed", "parsed_post", "post", 20)])


# Each generation's own tail-call targets (tail_marks.c): main tail-calls a
# stage that counts the packet in marks[mark], mark a setting; the VM tier
# builds generation 1 with mark 1 and 2 with mark 2, then rolls back to 1.
MARKS_PLUGIN = ("marks", "tail_marks.c")


def marks_chain():
    """(attach, main, hooks) of the marks chain: main only."""
    return ("tc_ingress", {"plugin": "marks", "function": "tc_jump"}, [])
