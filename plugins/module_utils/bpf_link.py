# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""BPF links and what the attach backends ask the kernel through libbpf:
create, update (the atomic swap), detach; tcx links with anchors and the tcx
revision of BPF_PROG_QUERY, through the raw bpf() syscall where libbpf 1.1
has no call (both kernel 6.6). Reading a pinned link (libbpf.link_info) needs
none of this, so a no-op rerun does not import it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import ctypes
import errno as _errno
import os
import platform

from ctypes import POINTER, Structure, byref, c_char_p, c_int, c_size_t, c_uint32, c_uint64, c_void_p

from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import (
    BPF_F_AFTER, BPF_F_BEFORE, BPF_F_ID, BPF_F_REPLACE, BPF_LINK_CREATE, BPF_PROG_QUERY, BPF_TCX_EGRESS,
    BPF_TCX_INGRESS, BpfError, _b, _call, _L, _libc, _opts, _s, close_fd, obj_pin, declare)

# The libbpf functions this file calls (libbpf.declare)
declare([
    ('bpf_link__fd', c_int, [c_void_p]),
    ('bpf_link__pin', c_int, [c_void_p, c_char_p]),
    ('bpf_link__unpin', c_int, [c_void_p]),
    ('bpf_link__pin_path', c_char_p, [c_void_p]),
    ('bpf_link__detach', c_int, [c_void_p]),
    ('bpf_link__destroy', c_int, [c_void_p]),
    ('bpf_link_create', c_int, [c_int, c_int, c_int, c_void_p]),
    ('bpf_link_update', c_int, [c_int, c_int, c_void_p]),
    ('bpf_link_detach', c_int, [c_int]),
    ('bpf_prog_query_opts', c_int, [c_int, c_int, c_void_p]),
])


# bpf() syscall number per architecture (only for the raw calls below)
_SYS_BPF = {'x86_64': 321, 'aarch64': 280, 'riscv64': 280, 's390x': 351, 'ppc64le': 361}


class _LinkCreateOpts(Structure):
    _fields_ = [
        ('sz', c_size_t),
        ('flags', c_uint32),
        ('iter_info', c_void_p),
        ('iter_info_len', c_uint32),
        ('target_btf_id', c_uint32),
        ('_union', c_uint64 * 4),  # perf_event / kprobe_multi / tracing
    ]


class _LinkUpdateOpts(Structure):
    _fields_ = [('sz', c_size_t), ('flags', c_uint32), ('old_prog_fd', c_uint32)]


class _ProgQueryOpts(Structure):
    _fields_ = [
        ('sz', c_size_t),
        ('query_flags', c_uint32),
        ('attach_flags', c_uint32),
        ('prog_ids', POINTER(c_uint32)),
        ('prog_cnt', c_uint32),
        ('prog_attach_flags', POINTER(c_uint32)),
    ]


# ---------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------

class Link:
    """A bpf_link: a libbpf `struct bpf_link *` or a raw link fd (owned)."""

    def __init__(self, ptr=None, fd=None):
        if (ptr is None) == (fd is None):
            raise ValueError('Link needs exactly one of ptr or fd')
        self._ptr = ptr
        self._fd = fd
        self._pin_path = None

    @property
    def fd(self):
        if self._ptr:
            return _call('bpf_link__fd', _L().bpf_link__fd, self._ptr)
        if self._fd is None:
            raise BpfError('bpf_link', _errno.EBADF, 'link is closed')
        return self._fd

    @property
    def pin_path(self):
        if self._ptr:
            return _s(_L().bpf_link__pin_path(self._ptr))
        return self._pin_path

    def pin(self, path):
        if self._ptr:
            _call('bpf_link__pin', _L().bpf_link__pin, self._ptr, _b(path), target=path)
        else:
            obj_pin(self.fd, path)
            self._pin_path = path

    def unpin(self):
        if self._ptr:
            _call('bpf_link__unpin', _L().bpf_link__unpin, self._ptr)
        elif self._pin_path:
            os.unlink(self._pin_path)
            self._pin_path = None

    def update_program(self, prog, old_prog=None):
        """Atomically swap the program behind the link (BPF_LINK_UPDATE)."""
        link_update(self.fd, _prog_fd(prog), None if old_prog is None else _prog_fd(old_prog))

    def detach(self):
        """Detach from the hook (the link object stays, defunct) even if pinned."""
        link_detach(self.fd)

    def destroy(self):
        """Close our handle. A pinned link stays attached through its pin."""
        if self._ptr:
            _L().bpf_link__destroy(self._ptr)
            self._ptr = None
        elif self._fd is not None:
            close_fd(self._fd)
            self._fd = None

    close = destroy

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False


def _prog_fd(prog):
    return prog.fd if hasattr(prog, 'fd') else int(prog)  # a bpf_object.Program or an fd


def link_create(prog_fd, target_fd, attach_type, flags=0, target_btf_id=0):
    """bpf_link_create: returns the new link fd."""
    opts = _opts(_LinkCreateOpts, flags=flags, target_btf_id=target_btf_id)
    return _call('bpf_link_create', _L().bpf_link_create, prog_fd, target_fd,
                 attach_type, byref(opts))


def link_update(link_fd, new_prog_fd, old_prog_fd=None):
    """BPF_LINK_UPDATE; with old_prog_fd the kernel swaps only if it still runs that one."""
    opts = _opts(_LinkUpdateOpts)
    if old_prog_fd is not None:
        opts.flags = BPF_F_REPLACE
        opts.old_prog_fd = old_prog_fd
    _call('bpf_link_update', _L().bpf_link_update, link_fd, new_prog_fd, byref(opts))


def link_detach(fd):
    _call('bpf_link_detach', _L().bpf_link_detach, fd)


# ---------------------------------------------------------------------------
# tcx (kernel >= 6.6): raw bpf(), libbpf 1.1 has no tcx opts and no revision
# ---------------------------------------------------------------------------

class _AttrLinkCreateTcx(Structure):
    # union bpf_attr, link_create member with its tcx sub-struct
    _fields_ = [
        ('prog_fd', c_uint32),
        ('target_ifindex', c_uint32),
        ('attach_type', c_uint32),
        ('flags', c_uint32),
        ('relative_fd_or_id', c_uint32),
        ('_pad', c_uint32),
        ('expected_revision', c_uint64),
    ]


class _AttrQuery(Structure):
    # union bpf_attr, query member (6.6 layout: link ids and revision added)
    _fields_ = [
        ('target_fd_or_ifindex', c_uint32),
        ('attach_type', c_uint32),
        ('query_flags', c_uint32),
        ('attach_flags', c_uint32),
        ('prog_ids', c_uint64),
        ('count', c_uint32),
        ('_pad', c_uint32),
        ('prog_attach_flags', c_uint64),
        ('link_ids', c_uint64),
        ('link_attach_flags', c_uint64),
        ('revision', c_uint64),
    ]


def _sys_bpf(op, cmd, attr):
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        raise BpfError(op, _errno.ENOSYS, 'no bpf() syscall number for %s' % platform.machine())
    ret = _libc.syscall(nr, cmd, byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        raise BpfError(op, ctypes.get_errno())
    return ret


def tcx_link_create(prog_fd, ifindex, attach_type, before=None, after=None,
                    relative_id=False, expected_revision=0):
    """Create a tcx link on ifindex (in the caller's network namespace).

    before/after: a program fd (or id with relative_id=True) to anchor to;
    0 means first (before) or last (after). expected_revision, when non-zero,
    makes the kernel refuse (ESTALE) if the attach point changed meanwhile.
    """
    if before is not None and after is not None:
        raise ValueError('give at most one of before and after')
    attr = _AttrLinkCreateTcx(prog_fd=prog_fd, target_ifindex=ifindex,
                              attach_type=attach_type, expected_revision=expected_revision)
    relative = before if before is not None else after
    if relative is not None:
        attr.flags = BPF_F_BEFORE if before is not None else BPF_F_AFTER
        attr.relative_fd_or_id = relative
        if relative_id and relative:  # the kernel has no id 0: 0 stays first/last
            attr.flags |= BPF_F_ID
    return _sys_bpf('bpf(BPF_LINK_CREATE tcx)', BPF_LINK_CREATE, attr)


QueryResult = collections.namedtuple('QueryResult', 'prog_ids attach_flags revision')


def prog_query(target, attach_type, query_flags=0):
    """Programs attached at target (a cgroup fd, or an ifindex for tcx) in run order."""
    cap = 64
    while True:
        ids = (c_uint32 * cap)()
        if attach_type in (BPF_TCX_INGRESS, BPF_TCX_EGRESS):
            # raw: libbpf 1.1's opts have no revision field
            attr = _AttrQuery(target_fd_or_ifindex=target, attach_type=attach_type,
                              query_flags=query_flags, count=cap,
                              prog_ids=ctypes.addressof(ids))
            try:
                _sys_bpf('bpf(BPF_PROG_QUERY tcx)', BPF_PROG_QUERY, attr)
            except BpfError as exc:
                if exc.errno == _errno.ENOSPC and attr.count > cap:
                    cap = attr.count
                    continue
                raise
            count, flags, revision = attr.count, attr.attach_flags, attr.revision
        else:
            opts = _opts(_ProgQueryOpts, query_flags=query_flags, prog_cnt=cap)
            opts.prog_ids = ids
            ret = _L().bpf_prog_query_opts(target, attach_type, byref(opts))
            if ret == -_errno.ENOSPC and opts.prog_cnt > cap:
                cap = opts.prog_cnt
                continue
            if ret < 0:
                raise BpfError('bpf_prog_query_opts', -ret)
            count, flags, revision = opts.prog_cnt, opts.attach_flags, 0
        return QueryResult(list(ids[:count]), flags, revision)
