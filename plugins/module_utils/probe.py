# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Kernel feature detection by trying, never by version number.

Each probe builds a tiny program from raw BPF instructions (no clang on the
target), asks the kernel to do the real thing, and closes everything it made
before returning. Results are cached for the life of the process.

    probe_all() -> {'btf':      {'supported': True,  'reason': '...'},
                    'tcx':      {'supported': True,  'reason': '...'},
                    'xdp_link': {'supported': True,  'reason': '...'},
                    'freplace': {'supported': False, 'reason': 'kernel refuses
                                 BPF_PROG_TYPE_EXT: Operation not permitted (EPERM)'}}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import os
import socket
import struct
import sys
import threading

from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf, bpf_link, bpf_object, libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import BpfError

FEATURES = ('btf', 'tcx', 'xdp_link', 'freplace')
VMLINUX_BTF = '/sys/kernel/btf/vmlinux'

_CLONE_NEWNET = 0x40000000
_XDP_PASS = 2
_TC_ACT_OK = 0

_cache = {}
_cache_lock = threading.RLock()  # freplace asks for btf while holding it


# ---------------------------------------------------------------------------
# Raw instructions (struct bpf_insn: code, dst:4/src:4, off, imm)
# ---------------------------------------------------------------------------

def _insn(code, dst=0, src=0, off=0, imm=0):
    regs = (src << 4) | dst if sys.byteorder == 'little' else (dst << 4) | src
    return struct.pack('=BBhi', code, regs, off, imm)


def _mov_r0(imm):
    return _insn(0xb7, dst=0, imm=imm)  # BPF_ALU64 | BPF_MOV | BPF_K


_EXIT = _insn(0x95)  # BPF_JMP | BPF_EXIT


def _call_rel(offset):
    return _insn(0x85, src=1, imm=offset)  # BPF_JMP | BPF_CALL, src = BPF_PSEUDO_CALL


def _describe(exc):
    """'Operation not permitted (EPERM)' plus the verifier's last line if any."""
    text = '%s (%s)' % (libbpf.strerror(exc.errno), libbpf.errno_name(exc.errno))
    last = libbpf.log_tail(exc.log, 1)
    if last and not last.startswith('libbpf:'):
        text += ': ' + last
    return text


def _result(supported, reason):
    return {'supported': bool(supported), 'reason': reason}


# ---------------------------------------------------------------------------
# A throwaway network namespace
# ---------------------------------------------------------------------------
# tcx and xdp links are probed by really attaching to `lo` inside a network
# namespace that exists only for one short-lived thread: unshare(CLONE_NEWNET)
# changes the namespace of the calling thread only, nothing is named in
# /run/netns, the host's interfaces are never touched, and the namespace is
# gone when the thread ends. When unshare is not allowed (no CAP_SYS_ADMIN),
# tcx falls back to a cheaper test: a tcx link on ifindex 0 fails with ENODEV
# on a kernel that knows tcx and with EINVAL on one that does not. xdp links
# have no such tell (a missing device is EINVAL too), so they are reported
# unsupported with the reason.

def _in_throwaway_netns(fn):
    box = {}

    def run():
        try:
            from ctypes.util import find_library  # here, not at import: it runs ldconfig
            libc = ctypes.CDLL(find_library('c') or 'libc.so.6', use_errno=True)
            if libc.unshare(_CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            box['value'] = fn(socket.if_nametoindex('lo'))
        except BaseException as exc:  # handed to the caller's thread
            box['error'] = exc

    worker = threading.Thread(target=run, name='ebpf-datapath-probe')
    worker.start()
    worker.join()
    if 'error' in box:
        raise box['error']
    return box['value']


def _probe_link(what, prog_type, expected_attach_type, ret, attach, enodev_tell=False):
    """Load a one-line program and attach it with attach(prog_fd, ifindex) -> link fd."""
    try:
        prog_fd = bpf_object.prog_load(prog_type, _mov_r0(ret) + _EXIT, 'dpprobe_' + what,
                                       expected_attach_type=expected_attach_type)
    except BpfError as exc:
        return _result(False, 'kernel refuses the %s probe program: %s' % (what, _describe(exc)))
    try:
        def attempt(ifindex):
            libbpf.close_fd(attach(prog_fd, ifindex))

        try:
            _in_throwaway_netns(attempt)
            return _result(True, '%s link attached to lo in a throwaway network namespace' % what)
        except OSError as exc:
            unshare_error = exc
        except BpfError as exc:
            return _result(False, 'kernel refuses %s links: %s' % (what, _describe(exc)))
        if not enodev_tell:
            return _result(False, 'cannot probe %s links: no throwaway network namespace (%s)'
                           % (what, unshare_error))
        try:
            libbpf.close_fd(attach(prog_fd, 0))
        except BpfError as exc:
            if exc.errno == errno.ENODEV:  # attach type known, no such device
                return _result(True, 'kernel knows %s links (ENODEV for ifindex 0; no throwaway '
                                     'network namespace to attach in: %s)' % (what, unshare_error))
            return _result(False, 'kernel refuses %s links: %s' % (what, _describe(exc)))
        return _result(True, 'kernel accepted a %s link on ifindex 0' % what)
    finally:
        libbpf.close_fd(prog_fd)


def _probe_tcx():
    return _probe_link(
        'tcx', libbpf.BPF_PROG_TYPE_SCHED_CLS, 0, _TC_ACT_OK,
        lambda prog_fd, ifindex: bpf_link.tcx_link_create(prog_fd, ifindex, libbpf.BPF_TCX_INGRESS),
        enodev_tell=True)


def _probe_xdp_link():
    return _probe_link(
        'xdp', libbpf.BPF_PROG_TYPE_XDP, libbpf.BPF_XDP, _XDP_PASS,
        lambda prog_fd, ifindex: bpf_link.link_create(prog_fd, ifindex, libbpf.BPF_XDP))


# ---------------------------------------------------------------------------
# BTF and freplace
# ---------------------------------------------------------------------------

def _probe_btf():
    if not os.path.exists(VMLINUX_BTF):
        return _result(False, 'no kernel BTF at %s (kernel built without CONFIG_DEBUG_INFO_BTF)'
                       % VMLINUX_BTF)
    try:
        with bpf_btf.Btf.new_empty() as btf:
            int_id = btf.add_int('int', 4, libbpf.BTF_INT_SIGNED)
            proto = btf.add_func_proto(int_id)
            btf.add_func('dpprobe', libbpf.BTF_FUNC_GLOBAL, proto)
            btf.load_into_kernel()
    except BpfError as exc:
        return _result(False, 'kernel refuses BTF_LOAD: %s' % _describe(exc))
    return _result(True, 'kernel BTF at %s and BTF loads' % VMLINUX_BTF)


def _probe_freplace():
    """A tc program whose global function dpprobe_stub an EXT program replaces.

    The target is `int main(struct __sk_buff *ctx) { return dpprobe_stub(ctx); }`
    with BTF func_info for both functions; the extension has the stub's
    prototype. Loading the extension is the part some kernels refuse.
    """
    if not has_btf():
        return _result(False, 'freplace needs BTF: %s' % probe('btf')['reason'])
    fds = []
    try:
        with bpf_btf.Btf.new_empty() as btf:
            int_id = btf.add_int('int', 4, libbpf.BTF_INT_SIGNED)
            # The kernel matches a context argument by struct name only.
            ctx_ptr = btf.add_ptr(btf.add_struct('__sk_buff', 0))
            proto = btf.add_func_proto(int_id)
            btf.add_func_param('ctx', ctx_ptr)
            main_id = btf.add_func('dpprobe_main', libbpf.BTF_FUNC_GLOBAL, proto)
            stub_id = btf.add_func('dpprobe_stub', libbpf.BTF_FUNC_GLOBAL, proto)
            ext_id = btf.add_func('dpprobe_ext', libbpf.BTF_FUNC_GLOBAL, proto)
            btf.load_into_kernel()

            target_insns = (_call_rel(1) + _EXIT  # main: r0 = dpprobe_stub(ctx)
                            + _mov_r0(_TC_ACT_OK) + _EXIT)  # dpprobe_stub
            try:
                target_fd = bpf_object.prog_load(
                    libbpf.BPF_PROG_TYPE_SCHED_CLS, target_insns, 'dpprobe_tgt',
                    prog_btf_fd=btf.fd, func_info=[(0, main_id), (2, stub_id)])
            except BpfError as exc:
                return _result(False, 'kernel refuses the freplace target (a tc program with a '
                                      'global function): %s' % _describe(exc))
            fds.append(target_fd)
            try:
                ext_fd = bpf_object.prog_load(
                    libbpf.BPF_PROG_TYPE_EXT, _mov_r0(_TC_ACT_OK) + _EXIT, 'dpprobe_ext',
                    prog_btf_fd=btf.fd, func_info=[(0, ext_id)],
                    attach_prog_fd=target_fd, attach_btf_id=stub_id)
            except BpfError as exc:
                return _result(False, 'kernel refuses BPF_PROG_TYPE_EXT: %s' % _describe(exc))
            fds.append(ext_fd)
            try:
                fds.append(bpf_link.link_create(ext_fd, target_fd, 0, target_btf_id=stub_id))
            except BpfError as exc:
                return _result(False, 'kernel refuses to attach a BPF_PROG_TYPE_EXT program: %s'
                               % _describe(exc))
    except BpfError as exc:
        return _result(False, 'cannot build the freplace probe BTF: %s' % _describe(exc))
    finally:
        for fd in reversed(fds):
            libbpf.close_fd(fd)
    return _result(True, 'BPF_PROG_TYPE_EXT program loaded and attached to a global function')


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

_PROBES = {
    'btf': _probe_btf,
    'tcx': _probe_tcx,
    'xdp_link': _probe_xdp_link,
    'freplace': _probe_freplace,
}


def probe(feature):
    """{'supported': bool, 'reason': str} for one feature, probed once per process."""
    with _cache_lock:
        if feature not in _cache:
            try:
                _cache[feature] = _PROBES[feature]()
            except BpfError as exc:  # e.g. libbpf.so.1 missing
                _cache[feature] = _result(False, str(exc))
        return dict(_cache[feature])


def probe_all():
    return dict((feature, probe(feature)) for feature in FEATURES)


def has_btf():
    return probe('btf')['supported']


def has_tcx():
    return probe('tcx')['supported']


def has_xdp_link():
    return probe('xdp_link')['supported']


def has_freplace():
    return probe('freplace')['supported']


def reason(feature):
    """Why a feature is (not) available, for messages that tell what to do."""
    return probe(feature)['reason']


def freplace_reason():
    return reason('freplace')
