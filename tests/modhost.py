# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A simulated host driven through the real modules, and the traffic helpers
the datapath tests share (test_datapath, test_generations, the VM tier)."""

import os
import socket
import time

from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned

from modrun import run_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.path.join(ROOT, "bpf", "testdata")
DROP_PORT = 7777
OPEN_PORT = 8888


class Host:
    """One simulated host: its own bpffs_root and state_dir, and the lab."""

    def __init__(self, lab, bpffs_root, state_dir):
        self.lab = lab
        self.common = {"bpffs_root": bpffs_root, "state_dir": state_dir}
        self.bpffs_root = bpffs_root

    def run(self, module, **args):
        expect_fail = args.pop("_fail", False)
        check = args.pop("_check", False)
        return run_module(module, dict(self.common, **args), check=check, expect_fail=expect_fail)

    def plugin(self, name, src, **args):
        return self.run("datapath_plugin", name=name, src=os.path.join(TESTDATA, src), **args)

    def counter(self, plugin, mapname="counts", key=0):
        return read_pinned(os.path.join(self.bpffs_root, "plugins", plugin, "maps", mapname)).get(key, 0)


def fn(name, attach):
    """Test plugins have a tc and an XDP flavour of each function."""
    return name + "_xdp" if attach == "xdp" else name


def registry_bytes(state_dir):
    """registry.json as written: a refused change must leave it byte for byte."""
    with open(os.path.join(state_dir, "registry.json"), "rb") as handle:
        return handle.read()


def place(lab, side):
    return {"interface": lab.if_b if side == "b" else lab.if_a, "netns": lab.ns_b if side == "b" else lab.ns_a}


def udp_burst(lab, port, count, family=socket.AF_INET):
    """Send count datagrams from a to b and return how many b received."""
    dst = lab.addr6_b if family == socket.AF_INET6 else lab.addr_b
    with lab.in_ns(lab.ns_b):
        rx = socket.socket(family, socket.SOCK_DGRAM)
    try:
        rx.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        rx.settimeout(0.3)
        with lab.in_ns(lab.ns_a):
            tx = socket.socket(family, socket.SOCK_DGRAM)
        try:
            for i in range(count):
                tx.sendto(b"x%05d" % i, (dst, port))
        finally:
            tx.close()
        got = 0
        deadline = time.monotonic() + 2.0
        while got < count and time.monotonic() < deadline:
            try:
                rx.recv(64)
                got += 1
            except socket.timeout:
                break
        return got
    finally:
        rx.close()
