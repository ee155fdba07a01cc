# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""freplace mode, on a kernel that loads BPF_PROG_TYPE_EXT programs.

Collected only by the VM tier (tests/vm/tier runs it inside Debian's stock
kernel): this host's kernel refuses EXT programs, so here these tests would
prove nothing. The first test fails loudly if run where EXT is refused.
"""

import os
import sys

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf, probe
from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
from test_datapath import (DROP_PORT, OPEN_PORT, TESTDATA, chain_spec, host, install_test_plugins,  # noqa: E402,F401
                           place, udp_burst)

pytestmark = pytest.mark.usefixtures("lab")


def test_this_kernel_loads_extensions():
    assert probe.has_freplace(), "the VM tier must run on a kernel that loads EXT programs: %s" % (
        probe.freplace_reason(),)


@pytest.mark.parametrize("attach,side", [("tc_ingress", "b"), ("tc_egress", "a"), ("xdp", "b")])
def test_link_and_freplace_count_alike(host, lab, attach, side):
    """The same chain and the same traffic give the same counts in both modes."""
    install_test_plugins(host)
    deltas = {}
    for mode in ("link", "freplace"):
        res = host.run("dispatcher", name="dm", attach=attach, mode=mode, tc_backend="clsact",
                       plugins=chain_spec(attach), **place(lab, side))
        assert res["changed"] is True and res["mode"] == mode
        names = (("counter", "counts", 0), ("twin", "counts", 0), ("dropper", "dropped", 0),
                 ("verdicts", "seen", 2 if attach == "xdp" else 0))
        before = dict((n, host.counter(n, m, k)) for n, m, k in names)
        received = (udp_burst(lab, DROP_PORT, 10), udp_burst(lab, OPEN_PORT, 5))
        after = dict((n, host.counter(n, m, k)) for n, m, k in names)
        d = dict((n, after[n] - before[n]) for n in after)
        deltas[mode] = {"received": received, "dropped": d["dropper"],
                        "before_minus_after": d["counter"] - d["twin"],
                        "post_saw_all_passed": d["verdicts"] == d["twin"]}
    assert deltas["link"] == deltas["freplace"] == {
        "received": (0, 5), "dropped": 10, "before_minus_after": 10, "post_saw_all_passed": True}, deltas


def _count_objects():
    return len(list(libbpf.prog_ids())), len(list(libbpf.link_ids()))


def test_hundred_swaps_leave_one_dispatcher(lab, bpffs_root, state_dir):
    """100 chain swaps in freplace mode: exactly the objects of one dispatcher stay."""
    with Engine(bpffs_root, state_dir) as eng:
        for name, src in (("counter", "counter.c"), ("twin", "counter_twin.c"), ("dropper", "dropper.c")):
            eng.ensure_plugin(name, src=os.path.join(TESTDATA, src))
    orders = [
        [("counter", "count"), ("dropper", "drop_port"), ("twin", "count")],
        [("twin", "count"), ("dropper", "drop_port"), ("counter", "count")],
    ]

    def spec(i):
        hooks = [{"plugin": p, "function": f, "hook": "pre", "priority": n, "constraints": []}
                 for n, (p, f) in enumerate(orders[i % 2])]
        return dict(name="dswap", attach="tc_ingress", mode="freplace", tc_backend="clsact", main=None,
                    position=None, strict_constraints=False, keep_generations=1, hooks=hooks,
                    **place(lab, "b"))

    with Engine(bpffs_root, state_dir) as eng:
        eng.ensure_dispatcher(spec(0))
    baseline = _count_objects()
    for i in range(1, 101):
        with Engine(bpffs_root, state_dir) as eng:
            res = eng.ensure_dispatcher(spec(i))
            assert res["changed"] is True and res["generation"] == i + 1
    assert _count_objects() == baseline, "swaps leaked programs or links"
    gen_dirs = [d for d in os.listdir(os.path.join(bpffs_root, "dispatchers", "dswap")) if d.startswith("gen-")]
    assert gen_dirs == ["gen-101"]
    assert len(os.listdir(os.path.join(bpffs_root, "dispatchers", "dswap", "gen-101", "ext"))) == 3
    assert udp_burst(lab, DROP_PORT, 5) == 0 and udp_burst(lab, OPEN_PORT, 5) == 5
    with Engine(bpffs_root, state_dir) as eng:
        eng.remove_dispatcher("dswap")
    assert _count_objects()[1] == baseline[1] - 4, "removal must release the 3 extension links and the tc link"


def test_sixty_four_plugins_in_freplace_mode(host, lab):
    names = ["p%02d" % i for i in range(64)]
    for name in names:
        host.plugin(name, "counter.c")
    res = host.run("dispatcher", name="d64", attach="tc_ingress", mode="freplace", tc_backend="clsact",
                   plugins=[{"plugin": n, "function": "count"} for n in names], **place(lab, "b"))
    assert res["mode"] == "freplace"
    assert [p for p, _ in res["chain"]["pre"]] == names
    assert udp_burst(lab, OPEN_PORT, 6) == 6
    counts = [host.counter(n) for n in names]
    assert min(counts) >= 6 and len(set(counts)) == 1, counts
