# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""freplace mode, on a kernel that loads BPF_PROG_TYPE_EXT programs.

Collected only by the VM tier (tests/vm/tier runs it inside Debian's stock
kernel, 6.1, no tcx, so tc attach points use clsact); this host's kernel
refuses EXT programs. Under emulation a Python start costs seconds and a
clang run ~14 s, so these tests drive the engine the modules use in one
process, and every object comes from the compile cache the host tier filled
(tests/freplace_cases.py). The modules around the engine are proven on the
host tier.
"""

import os
import time

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf, probe
from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess
from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned

import freplace_cases as cases

from modhost import DROP_PORT, OPEN_PORT, place, udp_burst

PLACES = [pytest.param("tc_ingress", "b", id="clsact-ingress"), pytest.param("tc_egress", "a", id="clsact-egress"),
          pytest.param("xdp", "b", id="xdp")]


class VmHost:
    """One simulated host driven in-process through converge.Engine."""

    def __init__(self, lab, bpffs_root, state_dir):
        self.lab, self.bpffs_root, self.state_dir = lab, bpffs_root, state_dir

    def engine(self, check_mode=False):
        return Engine(self.bpffs_root, self.state_dir, check_mode=check_mode, run=run_subprocess)

    def counter(self, plugin, mapname="counts", key=0):
        return read_pinned(os.path.join(self.bpffs_root, "plugins", plugin, "maps", mapname)).get(key, 0)

    def spec(self, attach, side, mode, hooks, name="dfr", keep=3):
        return dict(name=name, attach=attach, mode=mode, tc_backend="clsact", main=None, position=None,
                    strict_constraints=False, keep_generations=keep, hooks=hooks, **place(self.lab, side))

    def apply(self, spec, check_mode=False):
        with self.engine(check_mode) as eng:
            return eng.ensure_dispatcher(spec)

    def pins(self):
        return sorted(os.path.relpath(os.path.join(d, f), self.bpffs_root)
                      for d, _dirs, files in os.walk(self.bpffs_root) for f in files)


@pytest.fixture
def vm(lab, bpffs_root, state_dir):
    lab.quiet()  # counters are compared after sequential reads: no stray packets
    host = VmHost(lab, bpffs_root, state_dir)
    with host.engine() as eng:
        cases.install(eng)
    return host


def test_this_kernel_loads_extensions():
    assert probe.has_freplace(), "the VM tier must run on a kernel that loads EXT programs: %s" % (
        probe.freplace_reason(),)


def _burst(vm, attach):
    names = (("counter", "counts", 0), ("twin", "counts", 0), ("dropper", "dropped", 0),
             ("verdicts", "seen", 2 if attach == "xdp" else 0))
    before = dict((n, vm.counter(n, m, k)) for n, m, k in names)
    received = (udp_burst(vm.lab, DROP_PORT, 10), udp_burst(vm.lab, OPEN_PORT, 5))
    d = dict((n, vm.counter(n, m, k) - before[n]) for n, m, k in names)
    return {"received": received, "dropped": d["dropper"], "before_minus_after": d["counter"] - d["twin"],
            "post_saw_all_passed": d["verdicts"] == d["twin"]}


EXPECTED = {"received": (0, 5), "dropped": 10, "before_minus_after": 10, "post_saw_all_passed": True}


@pytest.mark.parametrize("mode", ["freplace", "inline"])
@pytest.mark.parametrize("attach,side", PLACES)
def test_freplace_chain_end_to_end(vm, attach, side, mode):
    """The core behaviours in freplace mode and in inline mode (the chain
    compiled into one program, objects from the host's cache), and link mode
    agreeing in this VM."""
    spec = vm.spec(attach, side, mode, cases.hooks(attach))
    first = vm.apply(spec)
    assert first["changed"] and first["mode"] == mode
    assert [p for p, _function in first["chain"]["pre"]] == ["counter", "dropper", "twin"]
    ext_dir = os.path.join(vm.bpffs_root, "dispatchers", "dfr", "gen-1", "ext")
    if mode == "freplace":
        assert sorted(os.listdir(ext_dir)) == ["dp_post_0", "dp_pre_0", "dp_pre_1", "dp_pre_2"]
    else:
        assert not os.path.exists(ext_dir)
    freplace_counts = _burst(vm, attach)
    assert freplace_counts == EXPECTED

    # Rerun: unchanged, same program. Check mode on a reorder: reported, not applied.
    again = vm.apply(spec)
    assert not again["changed"] and again["prog_id"] == first["prog_id"]
    reordered = dict(spec, hooks=cases.hooks(attach, twin_after_dropper=False))
    preview = vm.apply(reordered, check_mode=True)
    assert preview["changed"] and "twin.%s -> dropper" % cases.fn("count", attach) in preview["after"]
    assert vm.apply(spec)["changed"] is False

    # Reorder for real: counters survive, both counters now see the drops.
    c_before = vm.counter("counter")
    swapped = vm.apply(reordered)
    # Not reset: stray packets (neighbour discovery) may only have added to it.
    assert swapped["changed"] and swapped["generation"] == 2 and vm.counter("counter") >= c_before
    after_reorder = _burst(vm, attach)
    assert after_reorder["dropped"] == 10 and after_reorder["before_minus_after"] == 0

    # A plugin the verifier refuses is refused when installed (issue 13): the
    # running chain stays, nothing leaks.
    pins = vm.pins()
    with pytest.raises(DatapathError) as caught:
        with vm.engine() as eng:
            eng.ensure_plugin("unsafe", src=os.path.join(cases.TESTDATA, "unsafe.c"))
    assert "verifier refuses function 'peek'" in str(caught.value)
    assert vm.pins() == pins
    assert _burst(vm, attach)["before_minus_after"] == 0, "the reordered chain still runs"

    # Rollback to generation 1: one swap to its pinned program, whose extension
    # links are still in place; the first order counts again, nothing rebuilt.
    with vm.engine() as eng:
        back = eng.rollback("dfr", 1)
    assert back["changed"] and back["to"] == 1
    assert _burst(vm, attach) == freplace_counts
    assert vm.apply(spec)["changed"] is False, "the rolled-back recipe is the recorded one"

    # The same chain built in link mode, in the same VM, counts the same.
    link = vm.apply(dict(spec, mode="link"))
    assert link["changed"] and link["mode"] == "link"
    assert _burst(vm, attach) == freplace_counts

    # Removal leaves nothing of ours.
    with vm.engine() as eng:
        assert eng.remove_dispatcher("dfr")["changed"]
    assert not os.path.exists(os.path.join(vm.bpffs_root, "dispatchers"))
    assert udp_burst(vm.lab, DROP_PORT, 3) == 3


@pytest.mark.parametrize("case", [0, 1], ids=["tc-entry", "xdp-entry"])
def test_entry_programs_in_freplace_mode(vm, case):
    """Entry programs (issue 13) as main and as hooks, freplace mode: the
    plugin's own SEC("tc") / SEC("xdp") programs replace the stubs; link mode
    in the same VM counts the same."""
    attach, main, hooks = cases.entry_chains()[case]
    xdp = attach == "xdp"
    spec = dict(vm.spec(attach, "b", "freplace", hooks, name="dent"), main=main)
    first = vm.apply(spec)
    assert first["changed"] and first["mode"] == "freplace"

    def burst():
        slots = (3,) if xdp else (0, 1, 2)
        names = [("counter", "counts", 0), ("verdicts", "seen", 1 if xdp else 2),
                 ("verdicts", "seen", 2 if xdp else 0)] + [("entry", "seen", k) for k in slots]
        before = [vm.counter(*n) for n in names]
        received = (udp_burst(vm.lab, DROP_PORT, 4), udp_burst(vm.lab, OPEN_PORT, 3))
        return received, [vm.counter(*n) - b for n, b in zip(names, before)]

    # main drops 4 (its own TC_ACT_SHOT / XDP_DROP, seen as such by the post hook)
    # and passes 3; the pre hooks see all 7; at tc the post entry program sees all 7 too
    # (verdicts returns -1, so the chain goes on).
    expected = ((0, 3), [7, 4, 3] + ([7] if xdp else [7, 7, 7]))
    assert burst() == expected
    link = vm.apply(dict(spec, mode="link"))
    assert link["changed"] and link["mode"] == "link"
    assert burst() == expected
    with vm.engine() as eng:
        assert eng.remove_dispatcher("dent")["changed"]


def _count_objects():
    return len(list(libbpf.prog_ids())), len(list(libbpf.link_ids()))


def _settled_count(expected, timeout=20.0):
    """Object counts once the kernel's deferred releases have run.

    A swap at clsact (tc filter change) drops the old program from an RCU work
    item, so for a moment after the swap it still has an id; under emulation
    that moment is long. Wait for the counts to reach `expected`, bounded: a
    real leak never gets there and the caller's assertion fails.
    """
    deadline = time.monotonic() + timeout
    counts = _count_objects()
    while counts != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        counts = _count_objects()
    return counts


def test_hundred_swaps_leave_one_dispatcher(vm):
    """100 chain swaps in freplace mode: exactly the objects of one dispatcher stay."""
    vm.apply(vm.spec("tc_ingress", "b", "freplace", cases.swap_hooks(0), name="dswap", keep=1))
    baseline = _count_objects()
    for i in range(1, 101):
        res = vm.apply(vm.spec("tc_ingress", "b", "freplace", cases.swap_hooks(i), name="dswap", keep=1))
        assert res["changed"] and res["generation"] == i + 1
    assert _settled_count(baseline) == baseline, "swaps leaked programs or links"
    disp_dir = os.path.join(vm.bpffs_root, "dispatchers", "dswap")
    assert [d for d in os.listdir(disp_dir) if d.startswith("gen-")] == ["gen-101"]
    assert len(os.listdir(os.path.join(disp_dir, "gen-101", "ext"))) == 3
    assert udp_burst(vm.lab, DROP_PORT, 5) == 0 and udp_burst(vm.lab, OPEN_PORT, 5) == 5
    with vm.engine() as eng:
        eng.remove_dispatcher("dswap")
    # The dispatcher and its three extensions are gone, and so are the three extension links.
    expected = (baseline[0] - 4, baseline[1] - 3)
    assert _settled_count(expected) == expected


def test_sixty_four_plugins_in_freplace_mode(vm):
    with vm.engine() as eng:
        cases.install(eng, cases.SIXTY_FOUR)
    res = vm.apply(vm.spec("tc_ingress", "b", "freplace", cases.sixty_four_hooks(), name="d64"))
    assert res["mode"] == "freplace"
    assert [p for p, _function in res["chain"]["pre"]] == cases.SIXTY_FOUR
    assert udp_burst(vm.lab, OPEN_PORT, 6) == 6
    counts = [vm.counter(n) for n in cases.SIXTY_FOUR]
    assert min(counts) >= 6 and len(set(counts)) == 1, counts
