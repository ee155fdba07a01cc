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

import os

import pytest

from modhost import OPEN_PORT, TESTDATA, Host, place, udp_burst

BPFFS = "/sys/fs/bpf"
# Top-level entries of /sys/fs/bpf that belong to test runs (this one's root
# and those of tests running in parallel), not to the host.
_TEST_ROOTS = ("dpt-", "ebpf-datapath-test-attach-")


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
