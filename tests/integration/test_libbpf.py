# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libbpf.py against the running kernel: real clang, real libbpf, real packets.

Needs root. Every namespace, veth and pin made here is removed in a finally.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import os
import random
import shutil
import socket
import struct
import subprocess

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf as L
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object
from ansible_collections.ebpf.datapath.plugins.module_utils import bpffs
from ansible_collections.ebpf.datapath.plugins.module_utils import probe

pyroute2 = pytest.importorskip('pyroute2')
from pyroute2 import IPRoute, netns  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data_libbpf')
CLANG = shutil.which('clang-19') or shutil.which('clang')
TC_ACT_OK, TC_ACT_SHOT = 0, 2
LAB_PORT = 7777


# ---------------------------------------------------------------------------
# fixtures: compiled objects, a bpffs directory, a two-namespace veth lab
# ---------------------------------------------------------------------------

@pytest.fixture(scope='session')
def objs(tmp_path_factory):
    """Compile every data_libbpf/*.c once: {'verdict': '/tmp/.../verdict.o', ...}."""
    if CLANG is None:
        pytest.fail('clang-19 is needed to compile the test programs')
    out = tmp_path_factory.mktemp('bpf-objs')
    built = {}
    for name in sorted(os.listdir(DATA)):
        if not name.endswith('.c'):
            continue
        obj = str(out / (name[:-2] + '.o'))
        subprocess.run([CLANG, '-target', 'bpf', '-g', '-O2',
                        '-I/usr/include/x86_64-linux-gnu',
                        '-c', os.path.join(DATA, name), '-o', obj],
                       check=True, capture_output=True)
        built[name[:-2]] = obj
    return built


@pytest.fixture
def pin_dir():
    bpffs.ensure_bpffs()
    path = '/sys/fs/bpf/dp-libbpf-test-%d-%06x' % (os.getpid(), random.getrandbits(24))
    os.mkdir(path)
    try:
        yield path
    finally:
        for root, dirs, files in os.walk(path, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                os.rmdir(os.path.join(root, name))
        os.rmdir(path)


class Lab:
    """ns_a <-> ns_b over a veth pair; UDP from b to a's port LAB_PORT."""

    addr_a, addr_b = '169.254.77.1', '169.254.77.2'  # link-local, never routed off-box

    def __init__(self):
        tag = '%04x%04x' % (os.getpid() & 0xffff, random.getrandbits(16))
        self.ns_a, self.ns_b = 'dplib-a-' + tag, 'dplib-b-' + tag
        self.veth_a, self.veth_b = 'dpa' + tag, 'dpb' + tag
        self.rx = self.tx = None
        self.ifindex_a = None

    @contextlib.contextmanager
    def inside(self, ns):
        """Run the block with this thread in network namespace ns."""
        netns.pushns(ns)
        try:
            yield
        finally:
            netns.popns()

    def up(self):
        netns.create(self.ns_a)
        netns.create(self.ns_b)
        with self.inside(self.ns_a):
            with IPRoute() as ipr:
                ipr.link('add', ifname=self.veth_a, kind='veth', peer=self.veth_b)
                ipr.link('set', index=ipr.link_lookup(ifname=self.veth_b)[0],
                         net_ns_fd=self.ns_b)
                self.ifindex_a = ipr.link_lookup(ifname=self.veth_a)[0]
                ipr.addr('add', index=self.ifindex_a, address=self.addr_a, prefixlen=30)
                ipr.link('set', index=self.ifindex_a, state='up')
            self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.rx.bind((self.addr_a, LAB_PORT))
            self.rx.settimeout(3)
        with self.inside(self.ns_b):
            with IPRoute() as ipr:
                idx = ipr.link_lookup(ifname=self.veth_b)[0]
                ipr.addr('add', index=idx, address=self.addr_b, prefixlen=30)
                ipr.link('set', index=idx, state='up')
            self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, count):
        """Send count datagrams b -> a and wait until each one arrived."""
        for i in range(count):
            self.tx.sendto(b'dp-%d' % i, (self.addr_a, LAB_PORT))
            self.rx.recv(64)

    def down(self):
        for sock in (self.rx, self.tx):
            if sock is not None:
                sock.close()
        for ns in (self.ns_a, self.ns_b):
            if ns in netns.listnetns():
                netns.remove(ns)  # takes the veth pair with it


@pytest.fixture
def lab():
    lab = Lab()
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _csum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def udp_packet(dport, payload=b'hello', sport=40000):
    """A complete Ethernet + IPv4 + UDP frame with correct checksums."""
    src, dst = socket.inet_aton('169.254.1.1'), socket.inet_aton('169.254.1.2')
    udp_len = 8 + len(payload)
    pseudo = src + dst + struct.pack('!BBH', 0, socket.IPPROTO_UDP, udp_len)
    udp = struct.pack('!HHHH', sport, dport, udp_len, 0) + payload
    udp = udp[:6] + struct.pack('!H', _csum(pseudo + udp) or 0xffff) + udp[8:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + udp_len, 1, 0, 64,
                     socket.IPPROTO_UDP, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', _csum(ip)) + ip[12:]
    eth = b'\x02\x00\x00\x00\x00\x02' + b'\x02\x00\x00\x00\x00\x01' + struct.pack('!H', 0x0800)
    return eth + ip + udp


def u32(value):
    return struct.pack('=I', value)


def u64_at(map_fd, key):
    raw = bpf_maps.map_lookup(map_fd, u32(key), 8)
    return None if raw is None else struct.unpack('=Q', raw)[0]


# ---------------------------------------------------------------------------
# 1. a compiled tc program judges real packets under BPF_PROG_TEST_RUN
# ---------------------------------------------------------------------------

def test_tc_program_verdicts_on_real_packets(objs):
    with bpf_object.BpfObject.open_file(objs['verdict']) as obj:
        prog = obj.program('dp_verdict')
        assert prog.section == 'tc'
        assert prog.type == L.BPF_PROG_TYPE_SCHED_CLS
        assert [p.name for p in obj.programs()] == ['dp_verdict']
        obj.load()

        discard = udp_packet(9)
        run = L.prog_test_run(prog.fd, discard)
        assert run.retval == TC_ACT_SHOT
        assert run.data_out == discard  # the program does not rewrite packets

        assert L.prog_test_run(prog.fd, udp_packet(53)).retval == TC_ACT_OK
        arp = udp_packet(9)[:12] + struct.pack('!H', 0x0806) + udp_packet(9)[14:]
        assert L.prog_test_run(prog.fd, arp).retval == TC_ACT_OK

        # the map saw both UDP packets, keyed by destination port
        ports = obj.map('dp_ports')
        assert u64_at(ports.fd, 9) == 1 and u64_at(ports.fd, 53) == 1

        info = L.prog_info(prog.fd)
        assert info.name == 'dp_verdict' and info.type == L.BPF_PROG_TYPE_SCHED_CLS
        assert len(info.tag) == 16 and info.btf_id > 0
        assert sorted(info.map_ids) == sorted(L.map_info(m.fd).id for m in obj.maps())


# ---------------------------------------------------------------------------
# 2. the verifier's reason reaches the exception
# ---------------------------------------------------------------------------

def test_verifier_rejection_carries_the_reason(objs):
    with bpf_object.BpfObject.open_file(objs['reject']) as obj:
        with pytest.raises(L.BpfError) as caught:
            obj.load()
    err = caught.value
    assert err.op == 'bpf_object__load'
    assert err.errno == errno.EACCES
    assert 'invalid access to packet' in err.log
    text = str(err)
    assert text.startswith('bpf_object__load')
    assert 'Permission denied (errno 13)' in text
    assert 'invalid access to packet' in text
    assert "prog 'dp_unsafe'" in text  # libbpf's own message names the program
    assert len([line for line in text.splitlines()[1:] if line.strip()]) <= L.LOG_TAIL_LINES


def test_open_errors_carry_libbpf_messages(tmp_path):
    missing = str(tmp_path / 'missing.o')
    with pytest.raises(L.BpfError) as caught:
        bpf_object.BpfObject.open_file(missing)
    assert caught.value.errno == errno.ENOENT
    assert missing in str(caught.value)
    with pytest.raises(L.BpfError) as caught:
        bpf_object.BpfObject.open_mem(b'not an ELF object', 'garbage')
    assert caught.value.op == 'bpf_object__open_mem'
    assert 'libbpf:' in caught.value.log


def test_open_mem_loads_like_open_file(objs):
    with open(objs['verdict'], 'rb') as f:
        image = f.read()
    with bpf_object.BpfObject.open_mem(image, 'from_memory') as obj:
        assert obj.name == 'from_memory'
        obj.load()
        assert L.prog_test_run(obj.program('dp_verdict').fd, udp_packet(9)).retval == TC_ACT_SHOT
        with pytest.raises(KeyError):
            obj.program('nope')
        with pytest.raises(KeyError):
            obj.map('nope')


# ---------------------------------------------------------------------------
# 3. pins: pin -> obj_get -> unpin, and map reuse across objects
# ---------------------------------------------------------------------------

def test_pin_obj_get_unpin_round_trip(objs, pin_dir):
    prog_pin = os.path.join(pin_dir, 'prog')
    map_pin = os.path.join(pin_dir, 'dp_ports')
    with bpf_object.BpfObject.open_file(objs['verdict']) as obj:
        obj.load()
        prog, ports = obj.program('dp_verdict'), obj.map('dp_ports')
        prog.pin(prog_pin)
        ports.pin(map_pin)

        fd = L.obj_get(prog_pin)
        try:
            assert L.prog_info(fd).id == L.prog_info(prog.fd).id
        finally:
            L.close_fd(fd)
        fd = L.obj_get(map_pin)
        try:
            assert L.map_info(fd).id == L.map_info(ports.fd).id
            bpf_maps.map_update(fd, u32(4242), struct.pack('=Q', 7))
            assert u64_at(ports.fd, 4242) == 7  # one map, two handles
        finally:
            L.close_fd(fd)

        # the pins keep the program and the map alive after the object is gone
        prog_id = L.prog_info(prog.fd).id
    fd = L.obj_get(prog_pin)
    try:
        assert L.prog_info(fd).id == prog_id
        with pytest.raises(L.BpfError) as caught:
            L.obj_pin(fd, prog_pin)
        assert caught.value.errno == errno.EEXIST and prog_pin in str(caught.value)
    finally:
        L.close_fd(fd)

    os.unlink(prog_pin)
    with bpf_object.BpfObject.open_file(objs['verdict']) as obj:
        obj.map('dp_ports').unpin(map_pin)
    assert os.listdir(pin_dir) == []
    with pytest.raises(L.BpfError) as caught:
        L.obj_get(prog_pin)
    assert caught.value.errno == errno.ENOENT and caught.value.op == 'bpf_obj_get'


def test_pinned_map_is_reused_by_a_new_object(objs, pin_dir):
    map_pin = os.path.join(pin_dir, 'dp_ports')
    with bpf_object.BpfObject.open_file(objs['verdict']) as first:
        first.map('dp_ports').set_pin_path(map_pin)
        assert first.map('dp_ports').pin_path == map_pin
        first.load()  # libbpf pins it at load
        first_id = L.map_info(first.map('dp_ports').fd).id
        L.prog_test_run(first.program('dp_verdict').fd, udp_packet(53))

    pinned = L.obj_get(map_pin)
    try:
        with bpf_object.BpfObject.open_file(objs['verdict']) as second:
            second.map('dp_ports').reuse_fd(pinned)
            second.load()
            ports = second.map('dp_ports')
            assert L.map_info(ports.fd).id == first_id
            L.prog_test_run(second.program('dp_verdict').fd, udp_packet(53))
            assert u64_at(ports.fd, 53) == 2  # the count lived across rebuilds
    finally:
        L.close_fd(pinned)


# ---------------------------------------------------------------------------
# 4. tcx link on a lab veth counts real packets; link_update swaps in place
# ---------------------------------------------------------------------------

def test_tcx_link_counts_packets_and_updates_in_place(objs, lab, pin_dir):
    with bpf_object.BpfObject.open_file(objs['count_udp']) as obj:
        obj.load()
        prog_a, prog_b = obj.program('dp_count_a'), obj.program('dp_count_b')
        counts = obj.map('dp_counts').fd
        with lab.inside(lab.ns_a):
            link = bpf_link.Link(fd=bpf_link.tcx_link_create(prog_a.fd, lab.ifindex_a, L.BPF_TCX_INGRESS))
        with link:
            before = L.link_info(link.fd)
            assert before.type == L.BPF_LINK_TYPE_TCX
            assert before.ifindex == lab.ifindex_a
            assert before.attach_type == L.BPF_TCX_INGRESS
            assert before.prog_id == L.prog_info(prog_a.fd).id

            lab.send(10)
            assert (u64_at(counts, 0), u64_at(counts, 1)) == (10, 0)

            # swap to prog_b only if prog_a is still the one running
            bpf_link.link_update(link.fd, prog_b.fd, old_prog_fd=prog_a.fd)
            after = L.link_info(link.fd)
            assert after.id == before.id  # same link: never detached
            assert after.prog_id == L.prog_info(prog_b.fd).id
            lab.send(5)
            assert (u64_at(counts, 0), u64_at(counts, 1)) == (10, 5)

            # a stale "old program" is refused and changes nothing
            with pytest.raises(L.BpfError) as caught:
                bpf_link.link_update(link.fd, prog_a.fd, old_prog_fd=prog_a.fd)
            assert caught.value.errno == errno.EPERM
            assert L.link_info(link.fd).prog_id == after.prog_id

            # the link survives its fd through a pin, and Link swaps back
            link_pin = os.path.join(pin_dir, 'link')
            link.pin(link_pin)
            link.update_program(prog_a)
            lab.send(2)
            assert (u64_at(counts, 0), u64_at(counts, 1)) == (12, 5)
            pinned = L.obj_get(link_pin)
            try:
                assert L.link_info(pinned).id == before.id
            finally:
                L.close_fd(pinned)
            link.unpin()
            assert not os.path.exists(link_pin)
        # closing the last fd detached it: no program left at the hook
        with lab.inside(lab.ns_a):
            assert bpf_link.prog_query(lab.ifindex_a, L.BPF_TCX_INGRESS).prog_ids == []
        lab.send(3)
        assert (u64_at(counts, 0), u64_at(counts, 1)) == (12, 5)


def test_tcx_before_anchor_orders_first_and_stats_count_runs(objs, lab):
    with bpf_object.BpfObject.open_file(objs['count_udp']) as obj:
        obj.load()
        prog_a, prog_b = obj.program('dp_count_a'), obj.program('dp_count_b')
        id_a, id_b = L.prog_info(prog_a.fd).id, L.prog_info(prog_b.fd).id
        counts = obj.map('dp_counts').fd
        links = []
        stats = L.enable_stats()
        try:
            with lab.inside(lab.ns_a):
                links.append(bpf_link.tcx_link_create(prog_a.fd, lab.ifindex_a, L.BPF_TCX_INGRESS))
                first = bpf_link.prog_query(lab.ifindex_a, L.BPF_TCX_INGRESS)
                assert first.prog_ids == [id_a]
                # a revision that is no longer current is refused
                with pytest.raises(L.BpfError) as caught:
                    bpf_link.tcx_link_create(prog_b.fd, lab.ifindex_a, L.BPF_TCX_INGRESS,
                                             before=prog_a.fd, expected_revision=first.revision - 1)
                assert caught.value.errno == errno.ESTALE
                links.append(bpf_link.tcx_link_create(prog_b.fd, lab.ifindex_a, L.BPF_TCX_INGRESS,
                                                      before=prog_a.fd,
                                                      expected_revision=first.revision))
                second = bpf_link.prog_query(lab.ifindex_a, L.BPF_TCX_INGRESS)
                assert second.prog_ids == [id_b, id_a]
                assert second.revision == first.revision + 1
                # ingress anchors say nothing about egress
                assert bpf_link.prog_query(lab.ifindex_a, L.BPF_TCX_EGRESS).prog_ids == []

            runs_before = L.prog_info(prog_a.fd).run_cnt
            lab.send(4)
            # both return TCX_NEXT, so both ran on every packet
            assert (u64_at(counts, 0), u64_at(counts, 1)) == (4, 4)
            info = L.prog_info(prog_a.fd)
            assert info.run_cnt - runs_before >= 4  # ARP may add runs
            assert info.run_time_ns > 0
        finally:
            for fd in links:
                L.close_fd(fd)
            L.close_fd(stats)


def test_tcx_anchors_by_id_and_first_last(objs, lab):
    with bpf_object.BpfObject.open_file(objs['count_udp']) as obj:
        obj.load()
        prog_a, prog_b = obj.program('dp_count_a'), obj.program('dp_count_b')
        id_a, id_b = L.prog_info(prog_a.fd).id, L.prog_info(prog_b.fd).id
        egress = L.BPF_TCX_EGRESS
        with lab.inside(lab.ns_a):
            def order():
                return bpf_link.prog_query(lab.ifindex_a, egress).prog_ids

            first = bpf_link.tcx_link_create(prog_b.fd, lab.ifindex_a, egress)
            try:
                # relative to a program id
                fd = bpf_link.tcx_link_create(prog_a.fd, lab.ifindex_a, egress,
                                              before=id_b, relative_id=True)
                assert order() == [id_a, id_b]
                L.close_fd(fd)
                fd = bpf_link.tcx_link_create(prog_a.fd, lab.ifindex_a, egress,
                                              after=id_b, relative_id=True)
                assert order() == [id_b, id_a]
                L.close_fd(fd)
                # 0: first / last of the whole attach point
                for kw, expected in (({'before': 0}, [id_a, id_b]),
                                     ({'after': 0}, [id_b, id_a]),
                                     ({'before': 0, 'relative_id': True}, [id_a, id_b])):
                    fd = bpf_link.tcx_link_create(prog_a.fd, lab.ifindex_a, egress, **kw)
                    assert order() == expected, kw
                    L.close_fd(fd)
                assert order() == [id_b]
            finally:
                L.close_fd(first)
        with pytest.raises(ValueError):
            bpf_link.tcx_link_create(prog_a.fd, lab.ifindex_a, egress, before=0, after=0)
        with pytest.raises(ValueError):
            bpf_link.tcx_link_create(prog_a.fd, 1, L.BPF_TCX_EGRESS, before=1, after=2)


def test_xdp_link_counts_packets(objs, lab):
    with bpf_object.BpfObject.open_file(objs['count_udp']) as obj:
        obj.load()
        prog = obj.program('dp_xdp_count')
        assert prog.type == L.BPF_PROG_TYPE_XDP
        with lab.inside(lab.ns_a):
            fd = bpf_link.link_create(prog.fd, lab.ifindex_a, L.BPF_XDP)
        try:
            info = L.link_info(fd)
            assert info.type == L.BPF_LINK_TYPE_XDP and info.ifindex == lab.ifindex_a
            lab.send(6)
            assert u64_at(obj.map('dp_counts').fd, 2) == 6
        finally:
            L.close_fd(fd)


# ---------------------------------------------------------------------------
# 5. the static linker joins two objects into one program
# ---------------------------------------------------------------------------

def test_static_linker_joins_extern_call(objs, tmp_path):
    linked = str(tmp_path / 'linked.o')
    with bpf_object.Linker(linked) as linker:
        linker.add_file(objs['link_main'])
        linker.add_file(objs['link_lib'])
        linker.finalize()

    funcs = dict((f.name, f) for f in bpf_btf.Btf.from_elf(linked).functions())
    assert funcs['dp_mix'].linkage == 'global'
    assert funcs['dp_linked'].params == [('skb', 'struct __sk_buff *')]

    with bpf_object.BpfObject.open_file(linked) as obj:
        obj.load()
        packet = udp_packet(53)
        run = L.prog_test_run(obj.program('dp_linked').fd, packet)
        assert run.retval == len(packet) * 2 + 1  # computed by dp_mix from the other object

    # alone, the caller is refused: libbpf names the unresolved extern
    with pytest.raises(L.BpfError) as caught:
        with bpf_object.BpfObject.open_file(objs['link_main']) as obj:
            obj.load()
    assert "extern 'dp_mix'" in str(caught.value)


def test_linker_error_names_the_problem(objs, tmp_path):
    with bpf_object.Linker(str(tmp_path / 'twice.o')) as linker:
        linker.add_file(objs['link_lib'])
        with pytest.raises(L.BpfError) as caught:
            linker.add_file(objs['link_lib'])  # dp_mix defined twice
    assert caught.value.op == 'bpf_linker__add_file'
    assert 'dp_mix' in str(caught.value)


# ---------------------------------------------------------------------------
# 6. maps, info, ids, BTF
# ---------------------------------------------------------------------------

def test_map_lookup_update_keys_delete_round_trip(objs):
    with bpf_object.BpfObject.open_file(objs['verdict']) as obj:
        internal = [m.name for m in obj.maps() if m.is_internal]
        assert internal == ['verdict.bss']
        obj.load()
        ports = obj.map('dp_ports')
        assert (ports.type, ports.key_size, ports.value_size, ports.max_entries) == \
            (L.BPF_MAP_TYPE_HASH, 4, 8, 64)
        info = L.map_info(ports.fd)
        assert (info.name, info.key_size, info.value_size, info.max_entries) == \
            ('dp_ports', 4, 8, 64)

        fd = ports.fd
        assert list(bpf_maps.map_keys(fd, 4)) == []
        for port in (80, 443, 8080):
            bpf_maps.map_update(fd, u32(port), struct.pack('=Q', port * 10))
        assert sorted(struct.unpack('=I', k)[0] for k in bpf_maps.map_keys(fd, 4)) == [80, 443, 8080]
        assert u64_at(fd, 443) == 4430
        with pytest.raises(L.BpfError) as caught:
            bpf_maps.map_update(fd, u32(80), struct.pack('=Q', 1), L.BPF_NOEXIST)
        assert caught.value.errno == errno.EEXIST
        bpf_maps.map_update(fd, u32(80), struct.pack('=Q', 1), L.BPF_EXIST)
        assert u64_at(fd, 80) == 1
        assert bpf_maps.map_delete(fd, u32(80)) is True
        assert bpf_maps.map_delete(fd, u32(80)) is False
        assert bpf_maps.map_lookup(fd, u32(80), 8) is None

        # per-CPU map: one value per possible CPU, summing to the number of runs
        prog_fd = obj.program('dp_verdict').fd
        L.prog_test_run(prog_fd, udp_packet(53), repeat=25)
        per_cpu = bpf_maps.map_lookup_percpu(obj.map('dp_runs').fd, u32(0), 8)
        assert len(per_cpu) == L.num_possible_cpus()
        assert sum(struct.unpack('=Q', v)[0] for v in per_cpu) == 25


def test_prog_info_run_counts_with_enable_stats(objs):
    with bpf_object.BpfObject.open_file(objs['verdict']) as obj:
        obj.load()
        fd = obj.program('dp_verdict').fd
        stats = L.enable_stats()
        try:
            run = L.prog_test_run(fd, udp_packet(53), repeat=100)
            info = L.prog_info(fd)
            assert info.run_cnt >= 100
            assert info.run_time_ns > 0
            assert run.duration_ns >= 0
        finally:
            L.close_fd(stats)


def test_ids_and_fds_by_id(objs):
    with bpf_object.BpfObject.open_file(objs['verdict']) as obj:
        obj.load()
        prog_id = L.prog_info(obj.program('dp_verdict').fd).id
        map_id = L.map_info(obj.map('dp_ports').fd).id
        assert prog_id in L.prog_ids()
        assert map_id in L.map_ids()
        fd = L.prog_fd_by_id(prog_id)
        try:
            assert L.prog_info(fd).name == 'dp_verdict'
        finally:
            L.close_fd(fd)
        fd = L.map_fd_by_id(map_id)
        try:
            assert L.map_info(fd).name == 'dp_ports'
        finally:
            L.close_fd(fd)
    assert prog_id not in L.prog_ids()  # closing the object released it
    with pytest.raises(L.BpfError) as caught:
        L.prog_fd_by_id(prog_id)
    assert caught.value.errno == errno.ENOENT


def test_link_ids_and_link_fd_by_id(objs, lab):
    with bpf_object.BpfObject.open_file(objs['count_udp']) as obj:
        obj.load()
        with lab.inside(lab.ns_a):
            fd = bpf_link.tcx_link_create(obj.program('dp_count_a').fd, lab.ifindex_a,
                                          L.BPF_TCX_INGRESS)
        try:
            link_id = L.link_info(fd).id
            assert link_id in L.link_ids()
            again = L.link_fd_by_id(link_id)
            try:
                bpf_link.link_detach(again)  # detach through another handle
                with lab.inside(lab.ns_a):
                    assert bpf_link.prog_query(lab.ifindex_a, L.BPF_TCX_INGRESS).prog_ids == []
            finally:
                L.close_fd(again)
        finally:
            L.close_fd(fd)
        assert link_id not in L.link_ids()


def test_btf_functions_and_variables(objs):
    with bpf_btf.Btf.from_elf(objs['link_main']) as btf:
        funcs = dict((f.name, f) for f in btf.functions())
    assert funcs['dp_linked'] == bpf_btf.BtfFunc('dp_linked', 'global',
                                                 [('skb', 'struct __sk_buff *')], 'int')
    assert funcs['dp_mix'].linkage == 'extern'
    assert [t for _param, t in funcs['dp_mix'].params] == ['__u32']

    with bpf_btf.Btf.from_elf(objs['verdict']) as btf:
        variables = dict((v.name, v) for v in btf.variables())
        assert [f.name for f in btf.functions()] == ['dp_verdict']
    assert variables['dp_ports'] == bpf_btf.BtfVar('dp_ports', 'global', '.maps')
    assert variables['dp_runs'].section == '.maps'
    assert variables['dp_last_len'] == bpf_btf.BtfVar('dp_last_len', 'global', '.bss')
    assert variables['_license'].section == 'license'

    with bpf_btf.Btf.from_elf(objs['count_udp']) as btf:
        linkage = dict((f.name, f.linkage) for f in btf.functions())
    assert linkage['dp_count_a'] == 'global' and 'count_into' not in linkage  # inlined


# ---------------------------------------------------------------------------
# freplace: attach where the kernel allows it, a clear EPERM where it does not
# ---------------------------------------------------------------------------

def test_freplace_matches_the_probe(objs):
    with bpf_object.BpfObject.open_file(objs['fr_target']) as target:
        target.load()
        target_fd = target.program('dp_target').fd
        packet = udp_packet(53)
        assert L.prog_test_run(target_fd, packet).retval == 1
        with bpf_object.BpfObject.open_file(objs['fr_ext']) as ext:
            prog = ext.program('dp_ext')
            assert prog.type == L.BPF_PROG_TYPE_EXT
            prog.set_attach_target(target_fd, 'dp_stub')
            if not probe.has_freplace():
                with pytest.raises(L.BpfError) as caught:
                    ext.load()
                assert caught.value.errno == errno.EPERM
                return
            ext.load()
            with prog.attach_freplace(target_fd, 'dp_stub') as link:
                info = L.link_info(link.fd)
                assert info.type == L.BPF_LINK_TYPE_TRACING
                assert info.target_obj_id == L.prog_info(target_fd).id
                assert L.prog_test_run(target_fd, packet).retval == 7
            assert L.prog_test_run(target_fd, packet).retval == 1


def test_program_setters(objs):
    with bpf_object.BpfObject.open_file(objs['count_udp']) as obj:
        b = obj.program('dp_count_b')
        b.set_autoload(False)
        assert b.autoload is False
        a = obj.program('dp_count_a')
        a.set_type(L.BPF_PROG_TYPE_SCHED_ACT)
        assert a.type == L.BPF_PROG_TYPE_SCHED_ACT
        a.set_expected_attach_type(0)
        obj.load()
        assert L.prog_info(a.fd).type == L.BPF_PROG_TYPE_SCHED_ACT
        with pytest.raises(L.BpfError):
            b.fd  # not loaded


def test_bpffs_helpers(tmp_path):
    assert bpffs.bpffs_mounted('/sys/fs/bpf')
    assert bpffs.ensure_bpffs('/sys/fs/bpf') is False  # already there: nothing to do
    where = str(tmp_path / 'bpffs')
    assert not bpffs.bpffs_mounted(where)
    assert bpffs.ensure_bpffs(where) is True  # made the directory and mounted bpffs
    try:
        assert bpffs.bpffs_mounted(where)
        assert bpffs.ensure_bpffs(where) is False
    finally:
        subprocess.run(['umount', where], check=True)
    assert not bpffs.bpffs_mounted(where)
    assert L.libbpf_version().startswith('1.')
