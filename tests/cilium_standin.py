# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for Cilium (bpf/testdata/cilium_standin.c) with Cilium's exact
convention: verdict and remote identity in cb[4], a tail call into the
endpoint's custom-call prog array at the key for family and direction, its own
verdict when the slot is empty. Shared by test_cilium and the crash tests."""

import os
import shutil
import socket

from ansible_collections.ebpf.datapath.plugins.module_utils import attach as att
from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENDPOINT = 42
ID_A, ID_EXTRA, ID_A6 = 1001, 1002, 1003
TC_ACT_SHOT = 2


class Cilium:
    """The stand-in loaded, its prog array pinned where Cilium pins it, attached."""

    def __init__(self, lab, globals_dir):
        self.lab = lab
        self.globals_dir = globals_dir
        self.extra = "10.199.%d.11" % lab.net
        cache = os.environ.get("EBPF_DATAPATH_CACHE_DIR") or os.path.join(globals_dir + "-cache")
        obj_path = Toolchain(cache, run_subprocess).compile(os.path.join(ROOT, "bpf", "testdata", "cilium_standin.c")).object_path
        self.obj = bpf_object.BpfObject.open_file(obj_path)
        self.obj.load()
        os.makedirs(globals_dir)
        self.calls_pin = os.path.join(globals_dir, att.CILIUM_CUSTOM_MAP % ENDPOINT)
        self.obj.map("calls").pin(self.calls_pin)
        lab.add_address(lab.ns_a, lab.if_a, self.extra, 24)
        self._identity4(lab.addr_a, ID_A)
        self._identity4(self.extra, ID_EXTRA)
        key6 = socket.inet_pton(socket.AF_INET6, lab.addr6_a)
        bpf_maps.map_update(self.obj.map("identity6").fd, key6, ID_A6.to_bytes(4, "little"))
        self._static_neighbours()
        with att.in_netns(lab.ns_b):
            self.link_fd = bpf_link.tcx_link_create(self.obj.program("cilium_standin").fd,
                                                    lab.ifindex(lab.ns_b, lab.if_b), libbpf.BPF_TCX_INGRESS)

    def _identity4(self, addr, identity):
        bpf_maps.map_update(self.obj.map("identity4").fd, socket.inet_aton(addr), identity.to_bytes(4, "little"))

    def _static_neighbours(self):
        """No ARP or neighbour discovery from our identities: their bytes are only our UDP."""
        for addr in (self.lab.addr_b, self.lab.addr6_b):
            self.lab.pin_neighbour(self.lab.ns_a, addr)
        for addr in (self.lab.addr_a, self.extra, self.lab.addr6_a):
            self.lab.pin_neighbour(self.lab.ns_b, addr)

    def drop(self, identity):
        bpf_maps.map_update(self.obj.map("policy").fd, identity.to_bytes(4, "little"), TC_ACT_SHOT.to_bytes(4, "little"))

    def slot(self, key):
        fd = libbpf.obj_get(self.calls_pin)
        try:
            return bpf_maps.map_lookup(fd, key.to_bytes(4, "little"), 4)
        finally:
            libbpf.close_fd(fd)

    def close(self):
        libbpf.close_fd(self.link_fd)
        self.obj.close()
        shutil.rmtree(self.globals_dir, ignore_errors=True)  # unlink the pin
