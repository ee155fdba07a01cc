# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Typed ctypes binding of the system libbpf.so.1 (libbpf 1.1 API): loading
the library, the errors, and the calls on kernel objects by fd, id and pin
(pins, object info, ids, test runs).

Split by job so that a run imports what it uses: objects, programs, maps and
the static linker are bpf_object.py; BTF is bpf_btf.py; links and the
attach-time queries are bpf_link.py; map elements by fd are bpf_maps.py;
bpffs mounts are bpffs.py. Each declares the libbpf functions it calls
(declare()), typed when first called.

Everything goes through libbpf; the raw bpf() syscall is used only where
libbpf 1.1 has no call (bpf_link.py: tcx links with anchors and the tcx
revision of BPF_PROG_QUERY, both kernel 6.6).

Errors are BpfError exceptions that carry the operation, the errno and the
log that explains them (the verifier log, or libbpf's own messages).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import ctypes
import errno as _errno
import os
import threading

from ctypes import (
    CFUNCTYPE, POINTER, Structure, byref, c_char, c_char_p, c_int,
    c_long, c_size_t, c_uint, c_uint8, c_uint32, c_uint64, c_void_p,
    create_string_buffer,
)

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError


# ---------------------------------------------------------------------------
# Constants (linux/bpf.h, linux/btf.h).
# The build host's linux-libc-dev (6.1) predates tcx (kernel 6.6), so the
# tcx numbers and flags are written out here from the 6.6+ UAPI.
# ---------------------------------------------------------------------------

# enum bpf_prog_type
BPF_PROG_TYPE_UNSPEC = 0
BPF_PROG_TYPE_SOCKET_FILTER = 1
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_PROG_TYPE_SCHED_ACT = 4
BPF_PROG_TYPE_XDP = 6
BPF_PROG_TYPE_TRACING = 26
BPF_PROG_TYPE_EXT = 28

# enum bpf_map_type (only those the collection looks at)
BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_MAP_TYPE_PERCPU_HASH = 5
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_LRU_HASH = 9
BPF_MAP_TYPE_LRU_PERCPU_HASH = 10
BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE = 21
BPF_MAP_TYPE_ARRAY_OF_MAPS = 12
BPF_MAP_TYPE_HASH_OF_MAPS = 13
BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
BPF_MAP_TYPE_RINGBUF = 27
PERCPU_MAP_TYPES = frozenset((
    BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY,
    BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
))

# enum bpf_attach_type
BPF_CGROUP_INET_INGRESS = 0  # also the expected_attach_type of freplace links
BPF_XDP = 37
BPF_TCX_INGRESS = 46  # kernel >= 6.6; absent from the 6.1 headers
BPF_TCX_EGRESS = 47

# enum bpf_link_type
BPF_LINK_TYPE_TRACING = 2
BPF_LINK_TYPE_XDP = 6
BPF_LINK_TYPE_TCX = 11  # kernel >= 6.6
BPF_LINK_TYPE_NETKIT = 13  # kernel >= 6.7

# attach / update flags
BPF_F_REPLACE = 1 << 2
BPF_F_BEFORE = 1 << 3  # kernel >= 6.6 (mprog anchors)
BPF_F_AFTER = 1 << 4
BPF_F_ID = 1 << 5

# map update flags
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

# enum bpf_stats_type
BPF_STATS_RUN_TIME = 0

# enum bpf_cmd, for the few raw syscalls
BPF_PROG_QUERY = 16
BPF_LINK_CREATE = 28

# BTF kinds, linkage and int encoding (linux/btf.h)
BTF_KIND_INT = 1
BTF_KIND_PTR = 2
BTF_KIND_ARRAY = 3
BTF_KIND_STRUCT = 4
BTF_KIND_UNION = 5
BTF_KIND_ENUM = 6
BTF_KIND_FWD = 7
BTF_KIND_TYPEDEF = 8
BTF_KIND_VOLATILE = 9
BTF_KIND_CONST = 10
BTF_KIND_RESTRICT = 11
BTF_KIND_FUNC = 12
BTF_KIND_FUNC_PROTO = 13
BTF_KIND_VAR = 14
BTF_KIND_DATASEC = 15
BTF_KIND_FLOAT = 16
BTF_KIND_DECL_TAG = 17
BTF_KIND_TYPE_TAG = 18
BTF_KIND_ENUM64 = 19
BTF_FUNC_STATIC = 0
BTF_FUNC_GLOBAL = 1
BTF_FUNC_EXTERN = 2
BTF_INT_SIGNED = 1
BTF_INT_CHAR = 2
BTF_INT_BOOL = 4

BPF_OBJ_NAME_LEN = 16
KERNEL_LOG_SIZE = 1 << 20  # verifier log buffer; only its tail is reported
LOG_TAIL_LINES = 30

# kernel-internal errno values that os.strerror() does not know
_KERNEL_ERRNO = {524: ('ENOTSUPP', 'Operation not supported')}


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

def errno_name(err):
    """'EPERM' for 1, 'ENOTSUPP' for 524, 'E123' for an unknown number."""
    if err in _KERNEL_ERRNO:
        return _KERNEL_ERRNO[err][0]
    return _errno.errorcode.get(err, 'E%d' % err)


def strerror(err):
    if err in _KERNEL_ERRNO:
        return _KERNEL_ERRNO[err][1]
    return os.strerror(err)


def log_tail(log, lines=LOG_TAIL_LINES):
    """The last `lines` non-empty lines of a log: the verifier's reason is at the end."""
    kept = [line for line in (log or '').splitlines() if line.strip()]
    return '\n'.join(kept[-lines:])


class BpfError(DatapathError):
    """A failed libbpf or bpf() operation.

    op: the libbpf function (e.g. 'bpf_object__load'); errno: positive errno;
    log: the verifier log and/or libbpf's messages ('' when there are none);
    target: what was operated on (a path, a program name), or None.
    """

    def __init__(self, op, err, log='', target=None):
        self.op = op
        self.errno = err
        self.log = log or ''
        self.target = target
        super(BpfError, self).__init__(self.__str__(), log=self.log)

    def __str__(self):
        where = self.op if self.target is None else '%s(%s)' % (self.op, self.target)
        text = '%s: %s (errno %d)' % (where, strerror(self.errno), self.errno)
        tail = log_tail(self.log)
        if tail:
            text += ': ' + tail
        return text


class LibbpfMissing(BpfError):
    """libbpf.so.1 could not be loaded (the libbpf1 package is missing)."""


# ---------------------------------------------------------------------------
# Loading libbpf and libc
# ---------------------------------------------------------------------------

_lib = None
_libc = None
LIBBPF_IMPORT_ERROR = None  # set when libbpf.so.1 is absent; modules report it

# libbpf's print callback: int (*)(enum libbpf_print_level, const char *, va_list).
# On x86_64 and arm64 a va_list argument arrives as a pointer, and libc's
# vsnprintf takes it the same way, so the message can be formatted here.
_PRINT_FN = CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
_LIBBPF_WARN, _LIBBPF_INFO = 0, 1
_tls = threading.local()


def _print_cb(level, fmt, args):
    sink = getattr(_tls, 'messages', None)
    if sink is None or level > _LIBBPF_INFO:
        return 0  # outside a captured operation, or debug chatter
    buf = create_string_buffer(4096)
    _libc.vsnprintf(buf, len(buf), fmt, args)
    sink.append(buf.value.decode('utf-8', 'replace').rstrip('\n'))
    return 0


_print_cb_ref = _PRINT_FN(_print_cb)  # module-level so it is never collected


class _Capture:
    """Collect libbpf's messages printed during one operation (per thread)."""

    def __enter__(self):
        self.saved = getattr(_tls, 'messages', None)
        self.messages = []
        _tls.messages = self.messages
        return self

    def __exit__(self, *exc):
        _tls.messages = self.saved
        return False

    @property
    def text(self):
        return '\n'.join(self.messages)


# (name, restype, argtypes) of the libbpf functions this file calls; the other
# wrappers (bpf_object.py, bpf_link.py, bpf_btf.py, bpf_maps.py) declare()
# theirs. _Binding types each on first use.
_SIGNATURES = [
    ('libbpf_major_version', c_uint32, []),
    ('libbpf_minor_version', c_uint32, []),
    ('libbpf_version_string', c_char_p, []),
    ('libbpf_set_print', c_void_p, [_PRINT_FN]),
    ('libbpf_num_possible_cpus', c_int, []),
    ('bpf_obj_pin', c_int, [c_int, c_char_p]),
    ('bpf_obj_get', c_int, [c_char_p]),
    ('bpf_obj_get_info_by_fd', c_int, [c_int, c_void_p, POINTER(c_uint32)]),
    ('bpf_prog_get_next_id', c_int, [c_uint32, POINTER(c_uint32)]),
    ('bpf_map_get_next_id', c_int, [c_uint32, POINTER(c_uint32)]),
    ('bpf_link_get_next_id', c_int, [c_uint32, POINTER(c_uint32)]),
    ('bpf_prog_get_fd_by_id', c_int, [c_uint32]),
    ('bpf_map_get_fd_by_id', c_int, [c_uint32]),
    ('bpf_link_get_fd_by_id', c_int, [c_uint32]),
    ('bpf_prog_test_run_opts', c_int, [c_int, c_void_p]),
    ('bpf_enable_stats', c_int, [c_int]),
]


def _open_libc():
    # glibc's soname first: ctypes.util.find_library('c') runs `/sbin/ldconfig -p`,
    # a process start at every import of this module (seconds under emulation).
    try:
        return ctypes.CDLL('libc.so.6', use_errno=True)
    except OSError:
        from ctypes.util import find_library
        return ctypes.CDLL(find_library('c'), use_errno=True)


class _Binding:
    """libbpf.so.1 whose functions get their signatures (_SIGNATURES) on first
    use: typing all of them at import cost every module run a millisecond."""

    def __init__(self, cdll):
        self._cdll = cdll

    def __getattr__(self, name):
        try:
            restype, argtypes = _TYPES[name]
        except KeyError:
            raise AttributeError('%s is not in libbpf._SIGNATURES' % name)
        fn = getattr(self._cdll, name)
        fn.restype, fn.argtypes = restype, argtypes
        setattr(self, name, fn)  # later lookups skip __getattr__
        return fn


def _load():
    global _lib, _libc, LIBBPF_IMPORT_ERROR
    libc = _open_libc()
    libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
    libc.vsnprintf.restype = c_int
    libc.syscall.restype = c_long
    libc.syscall.argtypes = [c_long, c_int, c_void_p, c_uint]  # only bpf() goes here (bpf_link.py)
    libc.close.argtypes = [c_int]
    libc.close.restype = c_int
    _libc = libc
    try:
        lib = _Binding(ctypes.CDLL('libbpf.so.1', use_errno=True))
        version = (lib.libbpf_major_version(), lib.libbpf_minor_version())
    except (OSError, AttributeError) as exc:
        LIBBPF_IMPORT_ERROR = 'libbpf.so.1 (libbpf >= 1.1) is not usable: %s' % exc
        return
    if version < (1, 1):
        LIBBPF_IMPORT_ERROR = 'libbpf.so.1 is libbpf %d.%d; libbpf >= 1.1 is needed' % version
        return
    lib.libbpf_set_print(_print_cb_ref)
    _lib = lib


_TYPES = {}


def declare(signatures):
    """Make the libbpf functions of signatures ((name, restype, argtypes), ...)
    callable through _L(): each wrapper file declares those it calls, so a run
    types (and compiles the table of) only what it imports."""
    _TYPES.update((name, (restype, argtypes)) for name, restype, argtypes in signatures)


declare(_SIGNATURES)
_load()


def _L():
    if _lib is None:
        raise LibbpfMissing('dlopen', _errno.ENOENT, LIBBPF_IMPORT_ERROR, 'libbpf.so.1')
    return _lib


def _b(text):
    if text is None:
        return None
    return text if isinstance(text, bytes) else os.fsencode(text)


def _s(raw):
    return raw.decode('utf-8', 'replace') if raw is not None else None


def _call(op, fn, *args, **kw):
    """Call a libbpf function that returns an int (negative errno on error)."""
    target = kw.get('target')
    with _Capture() as cap:
        ret = fn(*args)
    if ret < 0:
        raise BpfError(op, -ret, cap.text, target)
    return ret


def _call_ptr(op, fn, *args, **kw):
    """Call a libbpf function that returns a pointer (NULL and errno on error)."""
    target = kw.get('target')
    with _Capture() as cap:
        ctypes.set_errno(0)
        ptr = fn(*args)
        err = ctypes.get_errno()
    if not ptr:
        raise BpfError(op, err or _errno.EINVAL, cap.text, target)
    return ptr


def libbpf_version():
    """The version of the loaded libbpf.so.1, e.g. '1.1'."""
    lib = _L()
    return '%d.%d' % (lib.libbpf_major_version(), lib.libbpf_minor_version())


def num_possible_cpus():
    return _call('libbpf_num_possible_cpus', _L().libbpf_num_possible_cpus)


def close_fd(fd):
    """Close a bpf object fd (program, map, link, stats)."""
    if fd is not None and fd >= 0:
        os.close(fd)


# ---------------------------------------------------------------------------
# libbpf option structs (bpf.h / libbpf.h, 1.1 layout; sz makes them versioned)
# ---------------------------------------------------------------------------

class _TestRunOpts(Structure):
    _fields_ = [
        ('sz', c_size_t),
        ('data_in', c_void_p),
        ('data_out', c_void_p),
        ('data_size_in', c_uint32),
        ('data_size_out', c_uint32),
        ('ctx_in', c_void_p),
        ('ctx_out', c_void_p),
        ('ctx_size_in', c_uint32),
        ('ctx_size_out', c_uint32),
        ('retval', c_uint32),
        ('repeat', c_int),
        ('duration', c_uint32),
        ('flags', c_uint32),
        ('cpu', c_uint32),
        ('batch_size', c_uint32),
    ]


def _opts(cls, **fields):
    opts = cls(**fields)
    opts.sz = ctypes.sizeof(cls)
    return opts


# ---------------------------------------------------------------------------
# Something libbpf allocated (objects, the static linker, BTF)
# ---------------------------------------------------------------------------

class _Owned:
    """Something libbpf allocated (``self._ptr``), freed by close() with the
    libbpf function named by ``_FREE``; usable with ``with``."""

    _FREE = None
    _ptr = None

    def close(self):
        if self._ptr:
            getattr(_L(), self._FREE)(self._ptr)
            self._ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------------------
# bpffs pins
# ---------------------------------------------------------------------------

def obj_get(path):
    """Open a pinned program, map or link; returns its fd."""
    return _call('bpf_obj_get', _L().bpf_obj_get, _b(path), target=path)


def obj_pin(fd, path):
    _call('bpf_obj_pin', _L().bpf_obj_pin, fd, _b(path), target=path)


# ---------------------------------------------------------------------------
# Object info (struct bpf_*_info prefixes, linux/bpf.h layout)
# ---------------------------------------------------------------------------

class _ProgInfo(Structure):
    _fields_ = [
        ('type', c_uint32),
        ('id', c_uint32),
        ('tag', c_uint8 * 8),
        ('jited_prog_len', c_uint32),
        ('xlated_prog_len', c_uint32),
        ('jited_prog_insns', c_uint64),
        ('xlated_prog_insns', c_uint64),
        ('load_time', c_uint64),
        ('created_by_uid', c_uint32),
        ('nr_map_ids', c_uint32),
        ('map_ids', c_uint64),
        ('name', c_char * BPF_OBJ_NAME_LEN),
        ('ifindex', c_uint32),
        ('gpl_compatible', c_uint32),
        ('netns_dev', c_uint64),
        ('netns_ino', c_uint64),
        ('nr_jited_ksyms', c_uint32),
        ('nr_jited_func_lens', c_uint32),
        ('jited_ksyms', c_uint64),
        ('jited_func_lens', c_uint64),
        ('btf_id', c_uint32),
        ('func_info_rec_size', c_uint32),
        ('func_info', c_uint64),
        ('nr_func_info', c_uint32),
        ('nr_line_info', c_uint32),
        ('line_info', c_uint64),
        ('jited_line_info', c_uint64),
        ('nr_jited_line_info', c_uint32),
        ('line_info_rec_size', c_uint32),
        ('jited_line_info_rec_size', c_uint32),
        ('nr_prog_tags', c_uint32),
        ('prog_tags', c_uint64),
        ('run_time_ns', c_uint64),
        ('run_cnt', c_uint64),
        ('recursion_misses', c_uint64),
        ('verified_insns', c_uint32),
        ('attach_btf_obj_id', c_uint32),
        ('attach_btf_id', c_uint32),
    ]


class _MapInfo(Structure):
    _fields_ = [
        ('type', c_uint32),
        ('id', c_uint32),
        ('key_size', c_uint32),
        ('value_size', c_uint32),
        ('max_entries', c_uint32),
        ('map_flags', c_uint32),
        ('name', c_char * BPF_OBJ_NAME_LEN),
        ('ifindex', c_uint32),
        ('btf_vmlinux_value_type_id', c_uint32),
        ('netns_dev', c_uint64),
        ('netns_ino', c_uint64),
        ('btf_id', c_uint32),
        ('btf_key_type_id', c_uint32),
        ('btf_value_type_id', c_uint32),
        ('_pad', c_uint32),
        ('map_extra', c_uint64),
    ]


class _LinkInfo(Structure):
    # type, id, prog_id, then an 8-aligned union whose members we read as u32s:
    # xdp {ifindex}, tcx/netkit {ifindex, attach_type},
    # tracing {attach_type, target_obj_id, target_btf_id}
    _fields_ = [
        ('type', c_uint32),
        ('id', c_uint32),
        ('prog_id', c_uint32),
        ('_pad', c_uint32),
        ('u', c_uint32 * 8),
    ]


ProgInfo = collections.namedtuple('ProgInfo', [
    'id', 'type', 'name', 'tag', 'run_cnt', 'run_time_ns', 'btf_id', 'nr_map_ids',
    'map_ids', 'load_time', 'created_by_uid', 'xlated_prog_len', 'jited_prog_len',
    'verified_insns'])
MapInfo = collections.namedtuple('MapInfo', [
    'id', 'type', 'name', 'key_size', 'value_size', 'max_entries', 'flags'])
LinkInfo = collections.namedtuple('LinkInfo', [
    'id', 'type', 'prog_id', 'ifindex', 'attach_type', 'target_obj_id', 'target_btf_id'])


def _get_info(fd, info):
    size = c_uint32(ctypes.sizeof(info))
    _call('bpf_obj_get_info_by_fd', _L().bpf_obj_get_info_by_fd, fd, byref(info), byref(size))
    return info


def prog_info(fd):
    info = _get_info(fd, _ProgInfo())
    map_ids = []
    if info.nr_map_ids:
        # second call, now with room for the map ids
        ids = (c_uint32 * info.nr_map_ids)()
        again = _ProgInfo(nr_map_ids=info.nr_map_ids, map_ids=ctypes.addressof(ids))
        _get_info(fd, again)
        map_ids = list(ids[:min(again.nr_map_ids, info.nr_map_ids)])
    return ProgInfo(
        id=info.id, type=info.type, name=_s(info.name), tag=bytes(info.tag).hex(),
        run_cnt=info.run_cnt, run_time_ns=info.run_time_ns, btf_id=info.btf_id,
        nr_map_ids=info.nr_map_ids, map_ids=map_ids, load_time=info.load_time,
        created_by_uid=info.created_by_uid, xlated_prog_len=info.xlated_prog_len,
        jited_prog_len=info.jited_prog_len, verified_insns=info.verified_insns)


def map_info(fd):
    info = _get_info(fd, _MapInfo())
    return MapInfo(id=info.id, type=info.type, name=_s(info.name), key_size=info.key_size,
                   value_size=info.value_size, max_entries=info.max_entries,
                   flags=info.map_flags)


def link_info(fd):
    """LinkInfo; ifindex/attach_type for tcx, netkit and xdp links,
    attach_type/target_obj_id/target_btf_id for tracing (freplace) links, else None."""
    info = _get_info(fd, _LinkInfo())
    u = info.u
    ifindex = attach_type = target_obj_id = target_btf_id = None
    if info.type in (BPF_LINK_TYPE_TCX, BPF_LINK_TYPE_NETKIT):
        ifindex, attach_type = u[0], u[1]
    elif info.type == BPF_LINK_TYPE_XDP:
        ifindex, attach_type = u[0], BPF_XDP
    elif info.type == BPF_LINK_TYPE_TRACING:
        attach_type, target_obj_id, target_btf_id = u[0], u[1], u[2]
    return LinkInfo(id=info.id, type=info.type, prog_id=info.prog_id, ifindex=ifindex,
                    attach_type=attach_type, target_obj_id=target_obj_id,
                    target_btf_id=target_btf_id)


def _ids(op, fn):
    out, cur = [], c_uint32(0)
    while True:
        ret = fn(cur.value, byref(cur))
        if ret == -_errno.ENOENT:
            return out
        if ret < 0:
            raise BpfError(op, -ret)
        out.append(cur.value)


def prog_ids():
    return _ids('bpf_prog_get_next_id', _L().bpf_prog_get_next_id)


def map_ids():
    return _ids('bpf_map_get_next_id', _L().bpf_map_get_next_id)


def link_ids():
    return _ids('bpf_link_get_next_id', _L().bpf_link_get_next_id)


def prog_fd_by_id(obj_id):
    return _call('bpf_prog_get_fd_by_id', _L().bpf_prog_get_fd_by_id, obj_id, target=obj_id)


def map_fd_by_id(obj_id):
    return _call('bpf_map_get_fd_by_id', _L().bpf_map_get_fd_by_id, obj_id, target=obj_id)


def link_fd_by_id(obj_id):
    return _call('bpf_link_get_fd_by_id', _L().bpf_link_get_fd_by_id, obj_id, target=obj_id)


# ---------------------------------------------------------------------------
# Test runs and statistics
# ---------------------------------------------------------------------------

TestRun = collections.namedtuple('TestRun', 'retval duration_ns data_out ctx_out')


def prog_test_run(prog_fd, data, repeat=1, ctx=None, data_size_out=None):
    """BPF_PROG_TEST_RUN: run the program on `data` (a whole packet for tc/xdp).

    ctx: optional context bytes (e.g. a struct __sk_buff with cb[] set);
    its possibly modified copy comes back as ctx_out.
    """
    data = bytes(data)
    data_in = create_string_buffer(data, len(data))
    out_size = data_size_out if data_size_out is not None else len(data) + 512
    data_out = create_string_buffer(max(out_size, 1))
    opts = _opts(_TestRunOpts, data_in=ctypes.cast(data_in, c_void_p),
                 data_size_in=len(data), data_out=ctypes.cast(data_out, c_void_p),
                 data_size_out=out_size, repeat=repeat)
    ctx_out = None
    if ctx is not None:
        ctx = bytes(ctx)
        ctx_in = create_string_buffer(ctx, len(ctx))
        ctx_out = create_string_buffer(len(ctx))
        opts.ctx_in = ctypes.cast(ctx_in, c_void_p)
        opts.ctx_size_in = len(ctx)
        opts.ctx_out = ctypes.cast(ctx_out, c_void_p)
        opts.ctx_size_out = len(ctx)
    _call('bpf_prog_test_run_opts', _L().bpf_prog_test_run_opts, prog_fd, byref(opts))
    return TestRun(retval=opts.retval, duration_ns=opts.duration,
                   data_out=data_out.raw[:opts.data_size_out],
                   ctx_out=None if ctx_out is None else ctx_out.raw[:opts.ctx_size_out])


def enable_stats():
    """Turn on run_cnt/run_time_ns accounting while the returned fd stays open."""
    return _call('bpf_enable_stats', _L().bpf_enable_stats, BPF_STATS_RUN_TIME)
