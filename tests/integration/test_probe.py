# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""probe.py on this host kernel (6.18: tcx yes, BPF_PROG_TYPE_EXT refused). Needs root."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import threading
import time

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf as L
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object
from ansible_collections.ebpf.datapath.plugins.module_utils import probe


def _bpf_fds():
    """This process's open bpf objects: {fd: 'anon_inode:bpf-prog', ...}."""
    out = {}
    for name in os.listdir('/proc/self/fd'):
        try:
            target = os.readlink('/proc/self/fd/' + name)
        except OSError:
            continue
        if target.startswith('anon_inode:bpf') or target == 'anon_inode:btf':
            out[int(name)] = target
    return out


def _probe_programs():
    """Live programs that a probe loaded (their names start with dpprobe_)."""
    names = []
    for prog_id in L.prog_ids():
        try:
            fd = L.prog_fd_by_id(prog_id)
        except L.BpfError:
            continue  # went away meanwhile
        try:
            name = L.prog_info(fd).name
        finally:
            L.close_fd(fd)
        if name.startswith('dpprobe_'):
            names.append(name)
    return names


def _thread_netns():
    """The network namespaces (inode numbers) of this process's threads."""
    inodes = set()
    for tid in os.listdir('/proc/self/task'):
        try:
            inodes.add(os.stat('/proc/self/task/%s/ns/net' % tid).st_ino)
        except OSError:
            continue  # thread ended meanwhile
    return inodes


def _netns_list():
    return sorted(os.listdir('/run/netns')) if os.path.isdir('/run/netns') else []


def test_probe_all_on_this_host():
    result = probe.probe_all()
    assert sorted(result) == sorted(probe.FEATURES)
    assert result['btf']['supported'] is True
    assert result['tcx']['supported'] is True
    assert result['xdp_link']['supported'] is True
    assert result['freplace'] == {
        'supported': False,
        'reason': 'kernel refuses BPF_PROG_TYPE_EXT: Operation not permitted (EPERM)'}
    for feature in probe.FEATURES:
        assert result[feature]['reason']
    # the conveniences agree with the table and come from the per-process cache
    assert probe.has_btf() is True and probe.has_tcx() is True
    assert probe.has_xdp_link() is True and probe.has_freplace() is False
    assert probe.probe_all() == result
    assert probe.freplace_reason() == result['freplace']['reason']
    assert probe.reason('tcx') == result['tcx']['reason']


def test_probes_leave_nothing_behind():
    netns_before = _netns_list()
    fds_before = _bpf_fds()
    own_netns = os.stat('/proc/self/ns/net').st_ino

    # run the real probes (not the cache) a few times
    for _round in range(3):
        for feature in probe.FEATURES:
            assert probe._PROBES[feature]()['reason']

    assert _bpf_fds() == fds_before  # no program, map, link or BTF fd kept open
    # the throwaway namespace lived only in the probe's thread: it is gone, and
    # every thread left is in the namespace it started in; nothing was named
    assert not [t for t in threading.enumerate() if t.name == 'ebpf-datapath-probe']
    assert not [n for n in _netns_list() if n not in netns_before and 'probe' in n]
    # join() returns a moment before the OS thread is gone, and the kernel
    # releases links a moment after their last fd closes: allow for both
    deadline = time.time() + 5
    while (_thread_netns() != set([own_netns]) or _probe_programs()) and time.time() < deadline:
        time.sleep(0.05)
    assert _thread_netns() == set([own_netns])
    assert _probe_programs() == []


def test_tcx_probe_without_a_throwaway_namespace(monkeypatch):
    """Where unshare(CLONE_NEWNET) is refused, tcx is told by ENODEV on ifindex 0."""
    def refused(fn):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(probe, '_in_throwaway_netns', refused)
    tcx = probe._probe_tcx()
    assert tcx['supported'] is True and 'ENODEV' in tcx['reason']
    xdp = probe._probe_xdp_link()
    assert xdp['supported'] is False
    assert 'no throwaway network namespace' in xdp['reason']


def test_freplace_target_alone_loads():
    """The EPERM comes from the extension, not from a broken target program."""
    with bpf_btf.Btf.new_empty() as btf:
        int_id = btf.add_int('int', 4, L.BTF_INT_SIGNED)
        ctx_ptr = btf.add_ptr(btf.add_struct('__sk_buff', 0))
        proto = btf.add_func_proto(int_id)
        btf.add_func_param('ctx', ctx_ptr)
        main_id = btf.add_func('dpprobe_main', L.BTF_FUNC_GLOBAL, proto)
        stub_id = btf.add_func('dpprobe_stub', L.BTF_FUNC_GLOBAL, proto)
        btf.load_into_kernel()
        insns = probe._call_rel(1) + probe._EXIT + probe._mov_r0(0) + probe._EXIT
        fd = bpf_object.prog_load(L.BPF_PROG_TYPE_SCHED_CLS, insns, 'dpprobe_tgt',
                                  prog_btf_fd=btf.fd, func_info=[(0, main_id), (2, stub_id)])
    try:
        assert L.prog_test_run(fd, bytes(64)).retval == 0
        assert L.prog_info(fd).btf_id > 0
    finally:
        L.close_fd(fd)
