# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The corpus (tests/corpus/, see its README): programs written the way public
projects write them run unmodified as a dispatcher's main, with a pre and a
post hook, link mode, on this kernel, with real packets. For each, the pre
hook's counter proves the pre hook ran, the program's own map proves main ran
and decided, and the post hook's per-verdict counts prove the post hook ran
with main's own verdicts."""

import os
import struct
import subprocess

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned

from modhost import DROP_PORT, OPEN_PORT, Host, place, udp_burst

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corpus")
BPFFS = "/sys/fs/bpf"
_TEST_ROOTS = ("dpt-", "ebpf-datapath-test-attach-")


@pytest.fixture
def host(lab, bpffs_root, state_dir):
    lab.quiet()
    h = Host(lab, bpffs_root, state_dir)
    h.plugin("counter", "counter.c")
    h.plugin("verdicts", "verdicts.c")
    return h


@pytest.fixture(scope="module")
def vmlinux_dir(tmp_path_factory):
    """A directory holding vmlinux.h generated from the running kernel's BTF."""
    out = tmp_path_factory.mktemp("vmlinux")
    proc = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                          capture_output=True, check=True, timeout=120)
    (out / "vmlinux.h").write_bytes(proc.stdout)
    return str(out)


def pins_outside_test_roots():
    found = set()
    for top in os.listdir(BPFFS):
        if not top.startswith(_TEST_ROOTS):
            found.add(top)
            for dirpath, dirnames, filenames in os.walk(os.path.join(BPFFS, top)):
                found.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return found


def run_as_main(host, lab, plugin, function, attach):
    xdp = attach == "xdp"
    args = dict(name="corpus", attach=attach, mode="link", **place(lab, "b"),
                main={"plugin": plugin, "function": function},
                plugins=[{"plugin": "counter", "function": "count_xdp" if xdp else "count"},
                         {"plugin": "verdicts", "function": "record_xdp" if xdp else "record", "hook": "post"}])
    if not xdp:
        args["tc_backend"] = "tcx"
    result = host.run("dispatcher", **args)
    assert result["changed"] is True
    received = (udp_burst(lab, DROP_PORT, 4), udp_burst(lab, OPEN_PORT, 3))
    drop, ok = (1, 2) if xdp else (2, 0)  # XDP_DROP / XDP_PASS, TC_ACT_SHOT / TC_ACT_OK
    seen = (host.counter("counter"), host.counter("verdicts", "seen", drop), host.counter("verdicts", "seen", ok))
    assert host.run("dispatcher", **args)["changed"] is False
    host.run("dispatcher", name="corpus", state="absent")
    return received, seen


def test_core_tc_classifier_installs_and_is_verified(host, vmlinux_dir):
    """Compiled against the generated vmlinux.h (CO-RE relocations), its entry
    program verified at install under its own "Dual BSD/GPL" license."""
    installed = host.run("datapath_plugin", name="cls", src=os.path.join(CORPUS, "tc_core", "classifier.c"),
                         include_dirs=[vmlinux_dir])
    assert "classify_udp" in installed["plugin"]["functions"]
    assert installed["plugin"]["maps"] == {"verdict_counts": os.path.join(host.bpffs_root, "plugins", "cls", "maps",
                                                                          "verdict_counts")}


def test_core_tc_classifier_as_main(host, lab, vmlinux_dir):
    """Its "Dual BSD/GPL" license links beside the hooks' "GPL" (plugin_store.gpl_license_copy)."""
    host.run("datapath_plugin", name="cls", src=os.path.join(CORPUS, "tc_core", "classifier.c"),
             include_dirs=[vmlinux_dir])
    received, seen = run_as_main(host, lab, "cls", "classify_udp", "tc_ingress")
    assert received == (0, 3), "main (the classifier) drops port 7777 and passes the rest"
    assert seen == (7, 4, 3), "pre hook saw every packet; post hook saw main's 4 TC_ACT_SHOT and 3 TC_ACT_OK"
    assert host.counter("cls", "verdict_counts", 2) == 4 and host.counter("cls", "verdict_counts", 0) == 3


def _stats(host, plugin, action):
    """rx_packets of struct datarec {__u64 rx_packets, rx_bytes} for one XDP action."""
    value = read_pinned(os.path.join(host.bpffs_root, "plugins", plugin, "maps", "xdp_stats_map")).get(action)
    return struct.unpack("<QQ", bytes.fromhex(value))[0] if value else 0


def test_xdp_programs_sharing_a_header_and_a_pin_by_name_map(host, lab):
    outside = pins_outside_test_roots()
    for name, src in (("filter", "xdp_port_filter.c"), ("passall", "xdp_pass_all.c")):
        host.run("datapath_plugin", name=name, src=os.path.join(CORPUS, "xdp_shared", src))
    assert pins_outside_test_roots() == outside

    received, seen = run_as_main(host, lab, "filter", "xdp_port_filter_func", "xdp")
    assert received == (0, 3)
    assert seen == (7, 4, 3), "pre hook saw every packet; post hook saw main's 4 XDP_DROP and 3 XDP_PASS"
    assert (_stats(host, "filter", 1), _stats(host, "filter", 2)) == (4, 3), "main's own pinned stats"

    received, seen = run_as_main(host, lab, "passall", "xdp_pass_func", "xdp")
    assert received == (4, 3)
    assert seen == (14, 4, 10)
    assert _stats(host, "passall", 2) == 7
    # Pinned by name, the map is per plugin: the filter's stats did not move.
    assert _stats(host, "filter", 2) == 3
    assert pins_outside_test_roots() == outside
