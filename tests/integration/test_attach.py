# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""attach.py on the real kernel: tcx, clsact, xdp and Cilium custom-call slots.

Every attach point is an interface inside a network namespace of a two-namespace
veth lab; programs count packets into a map, real packets (UDP and ping) cross
the veth, and the tests read the counters back. Needs root.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import secrets
import socket
import subprocess

import pytest

from pyroute2 import IPRoute
from pyroute2 import netns as pr_netns

from ansible_collections.ebpf.datapath.plugins.module_utils import attach as att
from ansible_collections.ebpf.datapath.plugins.module_utils import attach_link
from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import CiliumAttachment, ClsactAttachment

# Keys of the `counts` map: one per test program, so a test can tell which ran.
KEY_A, KEY_B, KEY_DROP, KEY_OTHER, KEY_FOREIGN = 0, 1, 2, 3, 4

PROGRAMS_C = r"""
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

/* Stands in for Cilium's cilium_calls_custom_<endpoint> prog array. */
struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);
} calls SEC(".maps");

static __always_inline void bump(__u32 key)
{
    __u64 *v = bpf_map_lookup_elem(&counts, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

SEC("tc") int tc_count_a(struct __sk_buff *skb) { bump(0); return TC_ACT_OK; }
SEC("tc") int tc_count_b(struct __sk_buff *skb) { bump(1); return TC_ACT_OK; }
SEC("tc") int tc_drop(struct __sk_buff *skb) { bump(2); return TC_ACT_SHOT; }
/* Someone else's tcx program: counts and lets the next one run (TCX_NEXT). */
SEC("tc") int tc_other(struct __sk_buff *skb) { bump(3); return TC_ACT_UNSPEC; }

/* Cilium stand-in: tail-calls the IPv4 ingress custom-call slot (key 0). */
SEC("tc") int cilium_standin(struct __sk_buff *skb)
{
    bpf_tail_call(skb, &calls, 0);
    return TC_ACT_OK;
}

SEC("xdp") int xdp_count_a(struct xdp_md *ctx) { bump(0); return XDP_PASS; }
SEC("xdp") int xdp_count_b(struct xdp_md *ctx) { bump(1); return XDP_PASS; }
SEC("xdp") int xdp_drop(struct xdp_md *ctx) { bump(2); return XDP_DROP; }
SEC("xdp") int xdp_foreign(struct xdp_md *ctx) { bump(4); return XDP_PASS; }

char LICENSE[] SEC("license") = "GPL";
"""


# ---------------------------------------------------------------------------
# fixtures


class Programs:
    """The loaded test object: program fds and ids, the counters."""

    def __init__(self, obj):
        self.obj = obj
        self.counts_fd = obj.map("counts").fd
        self.calls_fd = obj.map("calls").fd

    def fd(self, name):
        return self.obj.program(name).fd

    def id(self, name):
        return libbpf.prog_info(self.fd(name)).id

    def count(self, key):
        raw = bpf_maps.map_lookup(self.counts_fd, key.to_bytes(4, "little"), 8)
        return int.from_bytes(raw, "little")

    def reset(self):
        for key in range(8):
            bpf_maps.map_update(self.counts_fd, key.to_bytes(4, "little"), bytes(8))


@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attach-progs")
    src = tmp / "progs.c"
    src.write_text(PROGRAMS_C)
    obj_path = tmp / "progs.o"
    proc = subprocess.run(["clang-19", "-target", "bpf", "-g", "-O2", "-I/usr/include/x86_64-linux-gnu",
                           "-c", str(src), "-o", str(obj_path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    obj = bpf_object.BpfObject.open_file(str(obj_path))
    try:
        obj.load()
        yield Programs(obj)
    finally:
        obj.close()


class Lab:
    """Two namespaces joined by a veth: va (ns_a, .1) <-> vb (ns_b, .2)."""

    def __init__(self, tag):
        self.ns_a = "att-a-" + tag
        self.ns_b = "att-b-" + tag
        self.addr_a = "10.231.%d.1" % (int(tag[:2], 16))
        self.addr_b = "10.231.%d.2" % (int(tag[:2], 16))

    def ping(self, count=3):
        """True when every echo request to vb got its reply."""
        proc = subprocess.run(["ip", "netns", "exec", self.ns_a, "ping", "-n", "-q", "-c", str(count),
                               "-i", "0.2", "-W", "1", self.addr_b], capture_output=True, text=True, check=False)
        return proc.returncode == 0

    def udp(self, count=20, towards="vb"):
        """Send `count` datagrams across the veth, into vb (ns_a -> ns_b) or out
        of it (towards="va"); return how many arrived."""
        src_ns, dst_ns, dst = self.ns_a, self.ns_b, self.addr_b
        if towards == "va":
            src_ns, dst_ns, dst = self.ns_b, self.ns_a, self.addr_a
        rx = self._socket(dst_ns)
        tx = self._socket(src_ns)
        try:
            rx.bind((dst, 0))
            rx.settimeout(1.0)
            port = rx.getsockname()[1]
            got = 0
            for i in range(count):
                tx.sendto(b"attach-test %d" % i, (dst, port))
            try:
                while got < count:
                    rx.recv(2048)
                    got += 1
            except socket.timeout:
                pass
            return got
        finally:
            rx.close()
            tx.close()

    @staticmethod
    def _socket(ns):
        """A UDP socket of namespace ns (a socket keeps the namespace it was made in)."""
        pr_netns.pushns(ns)
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        finally:
            pr_netns.popns()

    def run(self, ns, *argv):
        return subprocess.run(["ip", "netns", "exec", ns] + list(argv), capture_output=True, text=True,
                              check=True).stdout

    def ifindex(self, ns, name):
        with att.in_netns(ns):
            with IPRoute() as ipr:
                return ipr.link_lookup(ifname=name)[0]


@pytest.fixture
def netlab():
    tag = secrets.token_hex(3)
    netlab = Lab(tag)
    made = []
    try:
        for ns in (netlab.ns_a, netlab.ns_b):
            pr_netns.create(ns)
            made.append(ns)
        with att.in_netns(netlab.ns_a):
            with IPRoute() as ipr:
                ipr.link("add", ifname="va", kind="veth", peer={"ifname": "vb", "net_ns_fd": netlab.ns_b})
                idx = ipr.link_lookup(ifname="va")[0]
                ipr.addr("add", index=idx, address=netlab.addr_a, prefixlen=24)
                ipr.link("set", index=idx, state="up")
        with att.in_netns(netlab.ns_b):
            with IPRoute() as ipr:
                idx = ipr.link_lookup(ifname="vb")[0]
                ipr.addr("add", index=idx, address=netlab.addr_b, prefixlen=24)
                ipr.link("set", index=idx, state="up")
        assert netlab.ping(1), "netlab veth does not pass traffic before any attachment"
        yield netlab
    finally:
        for ns in made:
            pr_netns.remove(ns)


@pytest.fixture
def bpffs_dir():
    """A private bpffs directory for pins; removed with everything in it."""
    path = "/sys/fs/bpf/ebpf-datapath-test-attach-%d-%s" % (os.getpid(), secrets.token_hex(3))
    os.makedirs(path)
    try:
        yield path
    finally:
        for root, dirs, files in os.walk(path, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                os.rmdir(os.path.join(root, name))
        os.rmdir(path)


@pytest.fixture
def cleanup():
    """Callbacks run at teardown, last first, even when the test failed."""
    todo = []
    yield todo.append
    for fn in reversed(todo):
        try:
            fn()
        except Exception:
            pass


# ---------------------------------------------------------------------------
# helpers


def tc_filters(netlab, direction):
    """`tc filter show` lines that are filters (with a handle) on vb."""
    out = netlab.run(netlab.ns_b, "tc", "filter", "show", "dev", "vb", direction)
    return [line for line in out.splitlines() if "handle" in line]


def has_clsact(netlab):
    return "clsact" in netlab.run(netlab.ns_b, "tc", "qdisc", "show", "dev", "vb")


def tcx_ids(netlab, direction):
    attach_type = libbpf.BPF_TCX_INGRESS if direction == "ingress" else libbpf.BPF_TCX_EGRESS
    with att.in_netns(netlab.ns_b):
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname="vb")[0]
        return bpf_link.prog_query(idx, attach_type).prog_ids


def xdp_prog_ids(netlab):
    with att.in_netns(netlab.ns_b):
        with IPRoute() as ipr:
            return [pid for pid, _mode in attach_link.xdp_attached(ipr, ipr.link_lookup(ifname="vb")[0])]


def traffic_counts(netlab, progs, key, packets=20, direction="ingress"):
    """Reset the counters, send `packets` UDP datagrams through vb in `direction`,
    check all arrived; return the count at key."""
    progs.reset()
    assert netlab.udp(packets, towards="vb" if direction == "ingress" else "va") == packets
    return progs.count(key)


# ---------------------------------------------------------------------------
# tc: tcx and clsact, ingress and egress


@pytest.mark.parametrize("backend", ["tcx", "clsact"])
@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_tc_attach_swap_drop_detach(netlab, progs, bpffs_dir, backend, direction):
    ap = att.AttachPoint("tc_" + direction, "vb", netns=netlab.ns_b, backend=backend)
    pin = os.path.join(bpffs_dir, "dispatchers", "d1", "link-1")
    record = att.attach(ap, progs.fd("tc_count_a"), pin)
    try:
        assert record.backend == backend
        assert record.prog_id == progs.id("tc_count_a")
        assert record.ifindex == netlab.ifindex(netlab.ns_b, "vb")
        assert att.attached_prog_id(ap, record) == progs.id("tc_count_a")
        if backend == "tcx":
            assert os.path.exists(pin)
            assert tcx_ids(netlab, direction) == [progs.id("tc_count_a")]
        else:
            assert record.created_qdisc is True and has_clsact(netlab)
            assert len(tc_filters(netlab, direction)) == 1
        assert traffic_counts(netlab, progs, KEY_A, direction=direction) >= 20

        swapped = att.swap(ap, record, progs.fd("tc_count_b"))
        assert swapped.prog_id == progs.id("tc_count_b")
        assert att.attached_prog_id(ap, swapped) == progs.id("tc_count_b")
        if backend == "tcx":
            assert swapped.link_id == record.link_id  # same link, new program
            assert tcx_ids(netlab, direction) == [progs.id("tc_count_b")]
        else:
            assert (swapped.priority, swapped.handle) == (record.priority, record.handle)
            shown = tc_filters(netlab, direction)
            assert len(shown) == 1 and "tc_count_b" in shown[0] and "id %d " % swapped.prog_id in shown[0]
        assert traffic_counts(netlab, progs, KEY_B, direction=direction) >= 20
        assert progs.count(KEY_A) == 0

        dropping = att.swap(ap, swapped, progs.fd("tc_drop"))
        progs.reset()
        assert not netlab.ping(2)
        assert progs.count(KEY_DROP) >= 2
        record = att.swap(ap, dropping, progs.fd("tc_count_a"))
        assert netlab.ping(2)
    finally:
        assert att.detach(ap, record) is True
    assert att.attached_prog_id(ap, record) is None
    assert not os.path.exists(pin)
    if backend == "tcx":
        assert tcx_ids(netlab, direction) == []
    else:
        assert tc_filters(netlab, direction) == []
        assert not has_clsact(netlab)  # we added it, nothing else uses it: gone
    # Detaching again is fine.
    assert att.detach(ap, record) is False
    assert traffic_counts(netlab, progs, KEY_A, direction=direction) == 0


def test_clsact_leaves_a_qdisc_it_did_not_create(netlab, progs):
    netlab.run(netlab.ns_b, "tc", "qdisc", "add", "dev", "vb", "clsact")
    ap = att.AttachPoint("tc_ingress", "vb", netns=netlab.ns_b, backend="clsact")
    record = att.attach(ap, progs.fd("tc_count_a"), "/nonexistent/unused")
    assert record.created_qdisc is False
    assert traffic_counts(netlab, progs, KEY_A) >= 20
    assert att.detach(ap, record) is True
    assert tc_filters(netlab, "ingress") == []
    assert has_clsact(netlab)


def test_clsact_priority_and_foreign_filter(netlab, progs, cleanup):
    """A filter someone else put at tc ingress: ours goes after it by default,
    refuses its priority, and is never touched when it takes our place."""
    with att.in_netns(netlab.ns_b):
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname="vb")[0]
            ipr.tc("add", "clsact", idx)
            ipr.tc("add-filter", "bpf", idx, handle=1, parent=att.TC_H_CLSACT_INGRESS, prio=5,
                   protocol=att.ETH_P_ALL, fd=progs.fd("tc_other"), name="foreign", direct_action=True)
    ap = att.AttachPoint("tc_ingress", "vb", netns=netlab.ns_b, backend="clsact")

    with pytest.raises(att.AttachConflict) as err:
        att.attach(ap, progs.fd("tc_count_a"), "", position={"priority": 5})
    assert "priority 5" in str(err.value) and "foreign" in str(err.value)
    assert str(progs.id("tc_other")) in str(err.value)

    record = att.attach(ap, progs.fd("tc_count_a"), "")
    assert record.priority == 6 and record.created_qdisc is False
    # tc_other returns TC_ACT_UNSPEC: the packet goes on to ours.
    assert traffic_counts(netlab, progs, KEY_A) >= 20
    assert progs.count(KEY_OTHER) >= 20

    first = att.AttachPoint("tc_egress", "vb", netns=netlab.ns_b, backend="clsact")
    rec_first = att.attach(first, progs.fd("tc_count_b"), "", position={"anchor": "first"})
    assert rec_first.priority == 1
    att.detach(first, rec_first)

    # Someone replaces our filter with theirs: we notice and leave it alone.
    with att.in_netns(netlab.ns_b):
        with IPRoute() as ipr:
            ipr.tc("replace-filter", "bpf", idx, handle=1, parent=att.TC_H_CLSACT_INGRESS, prio=6,
                   protocol=att.ETH_P_ALL, fd=progs.fd("tc_drop"), name="theirs", direct_action=True)
    assert att.attached_prog_id(ap, record) is None
    with pytest.raises(att.AttachDrift) as err:
        att.swap(ap, record, progs.fd("tc_count_b"))
    assert err.value.current_prog_id == progs.id("tc_drop")
    assert att.detach(ap, record) is False
    shown = tc_filters(netlab, "ingress")
    assert len(shown) == 2 and any("theirs" in line for line in shown)
    assert has_clsact(netlab)


# ---------------------------------------------------------------------------
# tcx anchors and drift


def _foreign_tcx(netlab, progs, cleanup, direction="ingress"):
    """Someone else's tcx link (held by fd, not pinned) with tc_other."""
    attach_type = libbpf.BPF_TCX_INGRESS if direction == "ingress" else libbpf.BPF_TCX_EGRESS
    with att.in_netns(netlab.ns_b):
        fd = bpf_link.tcx_link_create(progs.fd("tc_other"), netlab.ifindex(netlab.ns_b, "vb"), attach_type)
    cleanup(lambda: libbpf.close_fd(fd))
    return fd


@pytest.mark.parametrize("position, ours_first", [
    (None, False),
    ({"anchor": "last"}, False),
    ({"anchor": "first"}, True),
    ({"anchor": "before", "prog_id": "OTHER"}, True),
    ({"anchor": "after", "prog_id": "OTHER"}, False),
])
def test_tcx_anchors(netlab, progs, bpffs_dir, cleanup, position, ours_first):
    _foreign_tcx(netlab, progs, cleanup)
    other = progs.id("tc_other")
    if position and position.get("prog_id") == "OTHER":
        position = dict(position, prog_id=other)
    ap = att.AttachPoint("tc_ingress", "vb", netns=netlab.ns_b, backend="tcx")
    record = att.attach(ap, progs.fd("tc_count_a"), os.path.join(bpffs_dir, "link"), position=position)
    cleanup(lambda: att.detach(ap, record))
    ours = progs.id("tc_count_a")
    assert tcx_ids(netlab, "ingress") == ([ours, other] if ours_first else [other, ours])
    # Ours passes (TCX_PASS) and ends the run when first; tc_other hands on (TCX_NEXT).
    assert traffic_counts(netlab, progs, KEY_A) >= 20
    assert (progs.count(KEY_OTHER) == 0) == ours_first
    att.detach(ap, record)
    assert tcx_ids(netlab, "ingress") == [other]


def test_tcx_anchor_on_a_missing_program(netlab, progs, bpffs_dir):
    ap = att.AttachPoint("tc_ingress", "vb", netns=netlab.ns_b, backend="tcx")
    with pytest.raises(att.AttachError) as err:
        att.attach(ap, progs.fd("tc_count_a"), os.path.join(bpffs_dir, "link"),
                   position={"anchor": "before", "prog_id": progs.id("tc_other")})
    assert "no such program" in str(err.value)
    assert not os.path.exists(os.path.join(bpffs_dir, "link"))
    assert tcx_ids(netlab, "ingress") == []


def test_tcx_swap_refuses_a_drifted_link(netlab, progs, bpffs_dir):
    ap = att.AttachPoint("tc_egress", "vb", netns=netlab.ns_b, backend="auto")
    record = att.attach(ap, progs.fd("tc_count_a"), os.path.join(bpffs_dir, "link"))
    try:
        assert record.backend == "tcx"  # auto on this 6.18 kernel
        # Someone else updates our pinned link behind our back.
        fd = libbpf.obj_get(record.link_pin)
        try:
            bpf_link.link_update(fd, progs.fd("tc_count_b"))
        finally:
            libbpf.close_fd(fd)
        with pytest.raises(att.AttachDrift) as err:
            att.swap(ap, record, progs.fd("tc_drop"))
        assert err.value.current_prog_id == progs.id("tc_count_b")
        assert "tc_count_b" in str(err.value)
        assert tcx_ids(netlab, "egress") == [progs.id("tc_count_b")]
        assert netlab.ping(1)
    finally:
        att.detach(ap, record)
    assert tcx_ids(netlab, "egress") == []


def test_link_gone_with_its_interface(netlab, progs, bpffs_dir):
    ap = att.AttachPoint("tc_ingress", "vb", netns=netlab.ns_b, backend="tcx")
    record = att.attach(ap, progs.fd("tc_count_a"), os.path.join(bpffs_dir, "link"))
    try:
        with att.in_netns(netlab.ns_b):
            with IPRoute() as ipr:
                ipr.link("del", ifname="vb")
        assert att.attached_prog_id(ap, record) is None
        with pytest.raises(att.AttachDrift):
            att.swap(ap, record, progs.fd("tc_count_b"))
    finally:
        assert att.detach(ap, record) is False  # nothing attached any more, pin dropped
    assert not os.path.exists(record.link_pin)


def test_missing_interface_and_namespace(netlab, progs, bpffs_dir):
    ap = att.AttachPoint("tc_ingress", "nosuch0", netns=netlab.ns_b, backend="tcx")
    with pytest.raises(att.AttachError) as err:
        att.attach(ap, progs.fd("tc_count_a"), os.path.join(bpffs_dir, "link"))
    assert str(err.value) == "interface nosuch0 not found in network namespace %s" % netlab.ns_b

    ghost = "att-ghost-" + secrets.token_hex(3)
    for kind in ("tc_ingress", "xdp"):
        ap = att.AttachPoint(kind, "vb", netns=ghost, backend="clsact")
        with pytest.raises(att.AttachError) as err:
            att.attach(ap, progs.fd("tc_count_a" if kind != "xdp" else "xdp_count_a"),
                       os.path.join(bpffs_dir, "link-" + kind))
        assert str(err.value) == "network namespace %s does not exist (ip netns list)" % ghost
    assert ghost not in pr_netns.listnetns()  # and looking did not create it
    # A record whose namespace went away reads as gone and detaches quietly.
    record = ClsactAttachment(interface="vb", netns=ghost, ifindex=2, parent=att.TC_H_CLSACT_INGRESS, priority=1,
                              handle=1, protocol=att.ETH_P_ALL, created_qdisc=True, prog_id=1, prog_name=None)
    ap = att.AttachPoint("tc_ingress", "vb", netns=ghost, backend="clsact")
    assert att.attached_prog_id(ap, record) is None
    assert att.detach(ap, record) is False


# ---------------------------------------------------------------------------
# xdp


def test_xdp_attach_swap_drop_detach(netlab, progs, bpffs_dir):
    ap = att.AttachPoint("xdp", "vb", netns=netlab.ns_b)
    pin = os.path.join(bpffs_dir, "link")
    assert att.owner_conflicts(ap) is None
    record = att.attach(ap, progs.fd("xdp_count_a"), pin)
    try:
        assert record.backend == "xdp_link" and record.xdp_mode == "native"  # veth has native XDP
        assert xdp_prog_ids(netlab) == [progs.id("xdp_count_a")]
        assert att.owner_conflicts(ap, record) is None
        assert traffic_counts(netlab, progs, KEY_A) >= 20

        swapped = att.swap(ap, record, progs.fd("xdp_count_b"))
        assert swapped.link_id == record.link_id
        assert xdp_prog_ids(netlab) == [progs.id("xdp_count_b")]
        assert traffic_counts(netlab, progs, KEY_B) >= 20
        assert progs.count(KEY_A) == 0

        dropping = att.swap(ap, swapped, progs.fd("xdp_drop"))
        progs.reset()
        assert not netlab.ping(2)
        assert progs.count(KEY_DROP) >= 2
        record = att.swap(ap, dropping, progs.fd("xdp_count_a"))
        assert netlab.ping(2)
    finally:
        assert att.detach(ap, record) is True
    assert not os.path.exists(pin)
    assert xdp_prog_ids(netlab) == []
    assert att.attached_prog_id(ap, record) is None
    assert att.detach(ap, record) is False


def test_xdp_refuses_a_foreign_program(netlab, progs, bpffs_dir, cleanup):
    foreign = progs.id("xdp_foreign")
    with att.in_netns(netlab.ns_b):
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname="vb")[0]
            ipr.link("set", index=idx, xdp_fd=progs.fd("xdp_foreign"))  # netlink, as `ip link set xdp` does

    def remove_foreign():
        with att.in_netns(netlab.ns_b):
            with IPRoute() as ipr:
                ipr.link("set", index=idx, xdp_fd=-1)
    cleanup(remove_foreign)

    ap = att.AttachPoint("xdp", "vb", netns=netlab.ns_b)
    conflict = att.owner_conflicts(ap)
    assert conflict is not None and "%d (xdp_foreign)" % foreign in conflict
    pin = os.path.join(bpffs_dir, "link")
    with pytest.raises(att.AttachConflict) as err:
        att.attach(ap, progs.fd("xdp_count_a"), pin)
    assert "XDP program %d (xdp_foreign)" % foreign in str(err.value)
    assert "vb in network namespace %s" % netlab.ns_b in str(err.value)
    assert not os.path.exists(pin)
    assert xdp_prog_ids(netlab) == [foreign]
    assert traffic_counts(netlab, progs, KEY_FOREIGN) >= 20
    assert progs.count(KEY_A) == 0


def test_xdp_link_conflict_reported_from_the_kernel(netlab, progs, bpffs_dir, cleanup, monkeypatch):
    """The race: another XDP link appears between our look and our attach;
    the kernel's EBUSY is turned into the same conflict message."""
    with att.in_netns(netlab.ns_b):
        fd = bpf_link.link_create(progs.fd("xdp_foreign"), netlab.ifindex(netlab.ns_b, "vb"), libbpf.BPF_XDP)
    cleanup(lambda: libbpf.close_fd(fd))
    looks = []
    real = attach_link.xdp_attached

    def late_look(ipr, ifindex):
        looks.append(ifindex)
        return [] if len(looks) == 1 else real(ipr, ifindex)
    monkeypatch.setattr(attach_link, "xdp_attached", late_look)
    ap = att.AttachPoint("xdp", "vb", netns=netlab.ns_b)
    with pytest.raises(att.AttachConflict) as err:
        att.attach(ap, progs.fd("xdp_count_a"), os.path.join(bpffs_dir, "link"))
    assert "%d (xdp_foreign)" % progs.id("xdp_foreign") in str(err.value)
    monkeypatch.undo()
    assert xdp_prog_ids(netlab) == [progs.id("xdp_foreign")]


# ---------------------------------------------------------------------------
# Cilium custom-call slot


@pytest.fixture
def cilium(netlab, progs, bpffs_dir, cleanup):
    """A Cilium stand-in: the prog array pinned as cilium_calls_custom_00042 under a
    private globals dir, and a tcx program on vb ingress that tail-calls slot 0."""
    path = os.path.join(bpffs_dir, att.CILIUM_CUSTOM_MAP % 42)
    libbpf.obj_pin(progs.calls_fd, path)
    for key in range(4):
        bpf_maps.map_delete(progs.calls_fd, key.to_bytes(4, "little"))
    with att.in_netns(netlab.ns_b):
        fd = bpf_link.tcx_link_create(progs.fd("cilium_standin"), netlab.ifindex(netlab.ns_b, "vb"),
                                      libbpf.BPF_TCX_INGRESS)
    cleanup(lambda: libbpf.close_fd(fd))
    return bpffs_dir


def slot(progs, key):
    raw = bpf_maps.map_lookup(progs.calls_fd, key.to_bytes(4, "little"), 4)
    return None if raw is None else int.from_bytes(raw, "little")


def test_cilium_custom_slot(netlab, progs, cilium):
    ap = att.AttachPoint("cilium_custom", endpoint=42, custom_hook="ipv4_ingress", cilium_globals=cilium)
    record = att.attach(ap, progs.fd("tc_count_a"), "")
    assert record.key == 0 and record.map_path.endswith("/cilium_calls_custom_00042")
    assert slot(progs, 0) == progs.id("tc_count_a")
    assert att.attached_prog_id(ap, record) == progs.id("tc_count_a")
    # Cilium's tail call reaches ours on real packets.
    assert traffic_counts(netlab, progs, KEY_A) >= 20

    record = att.swap(ap, record, progs.fd("tc_count_b"))
    assert slot(progs, 0) == progs.id("tc_count_b")
    assert traffic_counts(netlab, progs, KEY_B) >= 20
    assert progs.count(KEY_A) == 0

    dropping = att.swap(ap, record, progs.fd("tc_drop"))
    assert not netlab.ping(2)
    record = att.swap(ap, dropping, progs.fd("tc_count_a"))
    assert netlab.ping(2)

    assert att.detach(ap, record) is True
    assert slot(progs, 0) is None
    assert att.attached_prog_id(ap, record) is None
    assert att.detach(ap, record) is False
    # Empty slot: Cilium's program goes on (tail call falls through).
    assert traffic_counts(netlab, progs, KEY_A) == 0


def test_cilium_custom_leaves_a_foreign_program(netlab, progs, cilium):
    ap = att.AttachPoint("cilium_custom", endpoint=42, custom_hook="ipv4_ingress", cilium_globals=cilium)
    record = att.attach(ap, progs.fd("tc_count_a"), "")
    # Someone else puts their program into the slot.
    bpf_maps.map_update(progs.calls_fd, (0).to_bytes(4, "little"), progs.fd("tc_other").to_bytes(4, "little"))
    other = progs.id("tc_other")
    assert att.attached_prog_id(ap, record) is None
    with pytest.raises(att.AttachDrift) as err:
        att.swap(ap, record, progs.fd("tc_count_b"))
    assert err.value.current_prog_id == other
    assert att.detach(ap, record) is False
    assert slot(progs, 0) == other
    # And a fresh attach refuses to clobber it.
    assert "%d (tc_other)" % other in att.owner_conflicts(ap)
    with pytest.raises(att.AttachConflict):
        att.attach(ap, progs.fd("tc_count_a"), "")
    assert slot(progs, 0) == other
    assert traffic_counts(netlab, progs, KEY_OTHER) >= 20


def test_cilium_not_running(progs, bpffs_dir):
    ap = att.AttachPoint("cilium_custom", endpoint=7, custom_hook="ipv6_egress", cilium_globals=bpffs_dir)
    with pytest.raises(att.AttachError) as err:
        att.attach(ap, progs.fd("tc_count_a"), "")
    assert str(err.value) == ("Cilium is not running with custom calls for endpoint 7 (no %s/cilium_calls_custom_00007)"
                              % bpffs_dir)
    record = CiliumAttachment(map_path=ap.cilium_map_path, endpoint=7, custom_hook="ipv6_egress", key=3, prog_id=1,
                              prog_name=None)
    assert att.attached_prog_id(ap, record) is None
    assert att.detach(ap, record) is False


def test_attach_point_validation():
    with pytest.raises(att.AttachError):
        att.AttachPoint("tc_sideways", "vb")
    with pytest.raises(att.AttachError):
        att.AttachPoint("xdp")
    with pytest.raises(att.AttachError):
        att.AttachPoint("tc_ingress", "vb", backend="bpfilter")
    with pytest.raises(att.AttachError):
        att.AttachPoint("cilium_custom", endpoint=1, custom_hook="ipv5_ingress")
    assert att.AttachPoint("cilium_custom", endpoint=3, custom_hook="ipv6_ingress").cilium_key == 2
