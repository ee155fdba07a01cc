# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Typed ctypes binding of the system libbpf.so.1 (libbpf 1.1 API).

Everything goes through libbpf; the raw bpf() syscall is used only where
libbpf 1.1 has no call: tcx links with anchors and the tcx revision of
BPF_PROG_QUERY (both kernel 6.6, newer than libbpf 1.1).

Errors are BpfError exceptions that carry the operation, the errno and the
log that explains them (the verifier log, or libbpf's own messages).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import ctypes
import errno as _errno
import os
import platform
import threading

from ctypes import (
    CFUNCTYPE, POINTER, Structure, byref, c_bool, c_char, c_char_p, c_int,
    c_long, c_size_t, c_uint, c_uint8, c_uint32, c_uint64, c_ulong, c_void_p,
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
BPFFS_MAGIC = 0xCAFE4A11
KERNEL_LOG_SIZE = 1 << 20  # verifier log buffer; only its tail is reported
LOG_TAIL_LINES = 30

# bpf() syscall number per architecture (only for the raw calls above)
_SYS_BPF = {'x86_64': 321, 'aarch64': 280, 'riscv64': 280, 's390x': 351,
            'ppc64le': 361}

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


# (name, restype, argtypes) of every libbpf function used
_SIGNATURES = [
    ('libbpf_major_version', c_uint32, []),
    ('libbpf_minor_version', c_uint32, []),
    ('libbpf_version_string', c_char_p, []),
    ('libbpf_set_print', c_void_p, [_PRINT_FN]),
    ('libbpf_num_possible_cpus', c_int, []),
    # objects
    ('bpf_object__open_file', c_void_p, [c_char_p, c_void_p]),
    ('bpf_object__open_mem', c_void_p, [c_void_p, c_size_t, c_void_p]),
    ('bpf_object__load', c_int, [c_void_p]),
    ('bpf_object__close', None, [c_void_p]),
    ('bpf_object__name', c_char_p, [c_void_p]),
    ('bpf_object__next_program', c_void_p, [c_void_p, c_void_p]),
    ('bpf_object__next_map', c_void_p, [c_void_p, c_void_p]),
    ('bpf_object__find_program_by_name', c_void_p, [c_void_p, c_char_p]),
    ('bpf_object__find_map_by_name', c_void_p, [c_void_p, c_char_p]),
    # programs
    ('bpf_program__name', c_char_p, [c_void_p]),
    ('bpf_program__section_name', c_char_p, [c_void_p]),
    ('bpf_program__type', c_int, [c_void_p]),
    ('bpf_program__set_type', c_int, [c_void_p, c_int]),
    ('bpf_program__expected_attach_type', c_int, [c_void_p]),
    ('bpf_program__set_expected_attach_type', c_int, [c_void_p, c_int]),
    ('bpf_program__set_attach_target', c_int, [c_void_p, c_int, c_char_p]),
    ('bpf_program__autoload', c_bool, [c_void_p]),
    ('bpf_program__set_autoload', c_int, [c_void_p, c_bool]),
    ('bpf_program__fd', c_int, [c_void_p]),
    ('bpf_program__pin', c_int, [c_void_p, c_char_p]),
    ('bpf_program__unpin', c_int, [c_void_p, c_char_p]),
    ('bpf_program__attach_freplace', c_void_p, [c_void_p, c_int, c_char_p]),
    # maps
    ('bpf_map__name', c_char_p, [c_void_p]),
    ('bpf_map__type', c_int, [c_void_p]),
    ('bpf_map__fd', c_int, [c_void_p]),
    ('bpf_map__is_internal', c_bool, [c_void_p]),
    ('bpf_map__key_size', c_uint32, [c_void_p]),
    ('bpf_map__value_size', c_uint32, [c_void_p]),
    ('bpf_map__max_entries', c_uint32, [c_void_p]),
    ('bpf_map__set_pin_path', c_int, [c_void_p, c_char_p]),
    ('bpf_map__pin_path', c_char_p, [c_void_p]),
    ('bpf_map__reuse_fd', c_int, [c_void_p, c_int]),
    ('bpf_map__pin', c_int, [c_void_p, c_char_p]),
    ('bpf_map__unpin', c_int, [c_void_p, c_char_p]),
    # links
    ('bpf_link__fd', c_int, [c_void_p]),
    ('bpf_link__pin', c_int, [c_void_p, c_char_p]),
    ('bpf_link__unpin', c_int, [c_void_p]),
    ('bpf_link__pin_path', c_char_p, [c_void_p]),
    ('bpf_link__detach', c_int, [c_void_p]),
    ('bpf_link__destroy', c_int, [c_void_p]),
    # fd-level (bpf.h)
    ('bpf_prog_load', c_int, [c_int, c_char_p, c_char_p, c_void_p, c_size_t, c_void_p]),
    ('bpf_map_lookup_elem', c_int, [c_int, c_void_p, c_void_p]),
    ('bpf_map_update_elem', c_int, [c_int, c_void_p, c_void_p, c_uint64]),
    ('bpf_map_delete_elem', c_int, [c_int, c_void_p]),
    ('bpf_map_get_next_key', c_int, [c_int, c_void_p, c_void_p]),
    ('bpf_obj_pin', c_int, [c_int, c_char_p]),
    ('bpf_obj_get', c_int, [c_char_p]),
    ('bpf_link_create', c_int, [c_int, c_int, c_int, c_void_p]),
    ('bpf_link_update', c_int, [c_int, c_int, c_void_p]),
    ('bpf_link_detach', c_int, [c_int]),
    ('bpf_prog_query_opts', c_int, [c_int, c_int, c_void_p]),
    ('bpf_obj_get_info_by_fd', c_int, [c_int, c_void_p, POINTER(c_uint32)]),
    ('bpf_prog_get_next_id', c_int, [c_uint32, POINTER(c_uint32)]),
    ('bpf_map_get_next_id', c_int, [c_uint32, POINTER(c_uint32)]),
    ('bpf_link_get_next_id', c_int, [c_uint32, POINTER(c_uint32)]),
    ('bpf_prog_get_fd_by_id', c_int, [c_uint32]),
    ('bpf_map_get_fd_by_id', c_int, [c_uint32]),
    ('bpf_link_get_fd_by_id', c_int, [c_uint32]),
    ('bpf_prog_test_run_opts', c_int, [c_int, c_void_p]),
    ('bpf_enable_stats', c_int, [c_int]),
    # static linker
    ('bpf_linker__new', c_void_p, [c_char_p, c_void_p]),
    ('bpf_linker__add_file', c_int, [c_void_p, c_char_p, c_void_p]),
    ('bpf_linker__finalize', c_int, [c_void_p]),
    ('bpf_linker__free', None, [c_void_p]),
    # BTF
    ('btf__parse_elf', c_void_p, [c_char_p, c_void_p]),
    ('btf__free', None, [c_void_p]),
    ('btf__type_cnt', c_uint32, [c_void_p]),
    ('btf__type_by_id', c_void_p, [c_void_p, c_uint32]),
    ('btf__name_by_offset', c_char_p, [c_void_p, c_uint32]),
    ('btf__new_empty', c_void_p, []),
    ('btf__add_int', c_int, [c_void_p, c_char_p, c_size_t, c_int]),
    ('btf__add_ptr', c_int, [c_void_p, c_int]),
    ('btf__add_struct', c_int, [c_void_p, c_char_p, c_uint32]),
    ('btf__add_func_proto', c_int, [c_void_p, c_int]),
    ('btf__add_func_param', c_int, [c_void_p, c_char_p, c_int]),
    ('btf__add_func', c_int, [c_void_p, c_char_p, c_int, c_int]),
    ('btf__load_into_kernel', c_int, [c_void_p]),
    ('btf__fd', c_int, [c_void_p]),
]


def _open_libc():
    # glibc's soname first: ctypes.util.find_library('c') runs `/sbin/ldconfig -p`,
    # a process start at every import of this module (seconds under emulation).
    try:
        return ctypes.CDLL('libc.so.6', use_errno=True)
    except OSError:
        from ctypes.util import find_library
        return ctypes.CDLL(find_library('c'), use_errno=True)


def _load():
    global _lib, _libc, LIBBPF_IMPORT_ERROR
    libc = _open_libc()
    libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
    libc.vsnprintf.restype = c_int
    libc.syscall.restype = c_long
    libc.syscall.argtypes = [c_long, c_int, c_void_p, c_uint]  # only bpf() goes here
    libc.mount.argtypes = [c_char_p, c_char_p, c_char_p, c_ulong, c_void_p]
    libc.mount.restype = c_int
    libc.statfs.argtypes = [c_char_p, c_void_p]
    libc.statfs.restype = c_int
    libc.close.argtypes = [c_int]
    libc.close.restype = c_int
    _libc = libc
    try:
        lib = ctypes.CDLL('libbpf.so.1', use_errno=True)
        for name, restype, argtypes in _SIGNATURES:
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
    except (OSError, AttributeError) as exc:
        LIBBPF_IMPORT_ERROR = 'libbpf.so.1 (libbpf >= 1.1) is not usable: %s' % exc
        return
    lib.libbpf_set_print(_print_cb_ref)
    _lib = lib


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

class _OpenOpts(Structure):
    _fields_ = [
        ('sz', c_size_t),
        ('object_name', c_char_p),
        ('relaxed_maps', c_bool),
        ('pin_root_path', c_char_p),
        ('_attach_prog_fd', c_uint32),
        ('kconfig', c_char_p),
        ('btf_custom_path', c_char_p),
        ('kernel_log_buf', c_void_p),
        ('kernel_log_size', c_size_t),
        ('kernel_log_level', c_uint32),
    ]


class _ProgLoadOpts(Structure):
    _fields_ = [
        ('sz', c_size_t),
        ('attempts', c_int),
        ('expected_attach_type', c_int),
        ('prog_btf_fd', c_uint32),
        ('prog_flags', c_uint32),
        ('prog_ifindex', c_uint32),
        ('kern_version', c_uint32),
        ('attach_btf_id', c_uint32),
        ('attach_prog_fd', c_uint32),
        ('attach_btf_obj_fd', c_uint32),
        ('fd_array', c_void_p),
        ('func_info', c_void_p),
        ('func_info_cnt', c_uint32),
        ('func_info_rec_size', c_uint32),
        ('line_info', c_void_p),
        ('line_info_cnt', c_uint32),
        ('line_info_rec_size', c_uint32),
        ('log_level', c_uint32),
        ('log_size', c_uint32),
        ('log_buf', c_void_p),
    ]


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
# Objects, programs, maps (libbpf's high-level API)
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


class BpfObject(_Owned):
    """A BPF ELF object opened (and later loaded) by libbpf."""

    _FREE = 'bpf_object__close'

    def __init__(self, ptr, log_buf, keep=None):
        self._ptr = ptr
        self._log_buf = log_buf  # libbpf writes verifier logs here; must outlive ptr
        self._keep = keep  # open_mem: the ELF image libbpf reads until load

    @staticmethod
    def _new_opts(name, pin_root_path):
        # log_level 0 with a buffer: libbpf loads without a log (fast) and
        # retries a failing program with log_level 1 into this buffer.
        # pin_root_path: where libbpf puts maps declared with
        # __uint(pinning, LIBBPF_PIN_BY_NAME) (its default is /sys/fs/bpf);
        # read by libbpf during open only.
        log_buf = create_string_buffer(KERNEL_LOG_SIZE)
        opts = _opts(_OpenOpts, object_name=_b(name), pin_root_path=_b(pin_root_path),
                     kernel_log_buf=ctypes.cast(log_buf, c_void_p),
                     kernel_log_size=KERNEL_LOG_SIZE, kernel_log_level=0)
        return opts, log_buf

    @classmethod
    def open_file(cls, path, name=None, pin_root_path=None):
        opts, log_buf = cls._new_opts(name, pin_root_path)
        ptr = _call_ptr('bpf_object__open_file', _L().bpf_object__open_file,
                        _b(path), byref(opts), target=path)
        return cls(ptr, log_buf)

    @classmethod
    def open_mem(cls, data, name, pin_root_path=None):
        opts, log_buf = cls._new_opts(name, pin_root_path)
        image = create_string_buffer(bytes(data), len(data))
        ptr = _call_ptr('bpf_object__open_mem', _L().bpf_object__open_mem,
                        ctypes.cast(image, c_void_p), len(data), byref(opts), target=name)
        return cls(ptr, log_buf, keep=image)

    def _handle(self):
        if not self._ptr:
            raise BpfError('bpf_object', _errno.EBADF, 'object is closed')
        return self._ptr

    @property
    def name(self):
        return _s(_L().bpf_object__name(self._handle()))

    def _all(self, kind, cls):
        # bpf_object__next_program / __next_map: iterate from NULL to NULL.
        out, pos = [], None
        while True:
            pos = getattr(_L(), 'bpf_object__next_' + kind)(self._handle(), pos)
            if not pos:
                return out
            out.append(cls(self, pos))

    def _find(self, kind, cls, name):
        ptr = getattr(_L(), 'bpf_object__find_%s_by_name' % kind)(self._handle(), _b(name))
        if not ptr:
            raise KeyError(name)
        return cls(self, ptr)

    def programs(self):
        return self._all('program', Program)

    def program(self, name):
        return self._find('program', Program, name)

    def maps(self):
        return self._all('map', Map)

    def map(self, name):
        return self._find('map', Map, name)

    def load(self):
        """Create maps and load every autoload program; BpfError has the verifier log."""
        ctypes.memset(self._log_buf, 0, 1)
        with _Capture() as cap:
            ret = _L().bpf_object__load(self._handle())
        if ret < 0:
            verifier = self._log_buf.value.decode('utf-8', 'replace')
            log = '\n'.join(part for part in (verifier.rstrip(), cap.text) if part)
            raise BpfError('bpf_object__load', -ret, log, self.name)
        self._keep = None


class _Part:
    """A program or a map of a BpfObject (valid while the object is open): the
    calls both kinds have, libbpf's ``bpf_program__*`` or ``bpf_map__*``."""

    _PREFIX = None

    def __init__(self, obj, ptr):
        self._obj = obj
        self._ptr = ptr

    def _fn(self, suffix):
        return getattr(_L(), self._PREFIX + suffix)

    @property
    def name(self):
        return _s(self._fn('name')(self._ptr))

    @property
    def type(self):
        return self._fn('type')(self._ptr)

    def pin(self, path):
        _call(self._PREFIX + 'pin', self._fn('pin'), self._ptr, _b(path), target=path)

    def unpin(self, path):
        _call(self._PREFIX + 'unpin', self._fn('unpin'), self._ptr, _b(path), target=path)


class Program(_Part):
    """One program of a BpfObject."""

    _PREFIX = 'bpf_program__'

    @property
    def section(self):
        return _s(_L().bpf_program__section_name(self._ptr))

    def set_type(self, prog_type):
        _call('bpf_program__set_type', _L().bpf_program__set_type,
              self._ptr, prog_type, target=self.name)

    @property
    def expected_attach_type(self):
        return _L().bpf_program__expected_attach_type(self._ptr)

    def set_expected_attach_type(self, attach_type):
        _call('bpf_program__set_expected_attach_type',
              _L().bpf_program__set_expected_attach_type, self._ptr, attach_type,
              target=self.name)

    def set_attach_target(self, target_prog_fd, func_name):
        """Where an EXT (freplace) program will attach: a function of a loaded program."""
        _call('bpf_program__set_attach_target', _L().bpf_program__set_attach_target,
              self._ptr, target_prog_fd, _b(func_name), target=self.name)

    @property
    def autoload(self):
        return bool(_L().bpf_program__autoload(self._ptr))

    def set_autoload(self, autoload):
        _call('bpf_program__set_autoload', _L().bpf_program__set_autoload,
              self._ptr, bool(autoload), target=self.name)

    @property
    def fd(self):
        fd = _L().bpf_program__fd(self._ptr)
        if fd < 0:
            raise BpfError('bpf_program__fd', _errno.ENOENT,
                           'program is not loaded (load the object first, autoload on)',
                           self.name)
        return fd

    def attach_freplace(self, target_fd, func_name):
        ptr = _call_ptr('bpf_program__attach_freplace', _L().bpf_program__attach_freplace,
                        self._ptr, target_fd, _b(func_name), target=func_name)
        return Link(ptr=ptr)

    def __repr__(self):
        return 'Program(%r, section=%r)' % (self.name, self.section)


class Map(_Part):
    """One map of a BpfObject."""

    _PREFIX = 'bpf_map__'

    @property
    def fd(self):
        fd = _L().bpf_map__fd(self._ptr)
        if fd < 0:  # libbpf 1.1 returns -1 until the map is created or reused
            raise BpfError('bpf_map__fd', _errno.ENOENT,
                           'map is not created until the object is loaded', self.name)
        return fd

    @property
    def is_internal(self):
        """True for .bss/.data/.rodata/.kconfig maps that libbpf makes itself."""
        return bool(_L().bpf_map__is_internal(self._ptr))

    @property
    def key_size(self):
        return _L().bpf_map__key_size(self._ptr)

    @property
    def value_size(self):
        return _L().bpf_map__value_size(self._ptr)

    @property
    def max_entries(self):
        return _L().bpf_map__max_entries(self._ptr)

    def set_pin_path(self, path):
        _call('bpf_map__set_pin_path', _L().bpf_map__set_pin_path, self._ptr, _b(path),
              target=path)

    @property
    def pin_path(self):
        return _s(_L().bpf_map__pin_path(self._ptr))

    def reuse_fd(self, fd):
        """Use an existing map (e.g. a pinned one) instead of creating it at load."""
        _call('bpf_map__reuse_fd', _L().bpf_map__reuse_fd, self._ptr, fd, target=self.name)

    def __repr__(self):
        return 'Map(%r, type=%d)' % (self.name, self.type)


# ---------------------------------------------------------------------------
# Raw programs (probes build tiny programs from instructions, no clang needed)
# ---------------------------------------------------------------------------

def prog_load(prog_type, insns, name, prog_license='GPL', expected_attach_type=0,
              prog_btf_fd=0, func_info=None, attach_prog_fd=0, attach_btf_id=0,
              log_level=0):
    """bpf_prog_load of raw instructions (bytes, 8 per insn); returns the prog fd.

    func_info: list of (insn_off, btf_type_id) records (struct bpf_func_info).
    On failure BpfError.log holds the verifier log.
    """
    insns = bytes(insns)
    code = create_string_buffer(insns, len(insns))
    log_buf = create_string_buffer(KERNEL_LOG_SIZE)
    opts = _opts(_ProgLoadOpts, expected_attach_type=expected_attach_type,
                 prog_btf_fd=prog_btf_fd, attach_prog_fd=attach_prog_fd,
                 attach_btf_id=attach_btf_id)
    if func_info:
        records = (c_uint32 * (2 * len(func_info)))(*[v for rec in func_info for v in rec])
        opts.func_info = ctypes.cast(records, c_void_p)
        opts.func_info_cnt = len(func_info)
        opts.func_info_rec_size = 8
    opts.log_level = log_level
    opts.log_size = KERNEL_LOG_SIZE
    opts.log_buf = ctypes.cast(log_buf, c_void_p)
    with _Capture() as cap:
        ret = _L().bpf_prog_load(prog_type, _b(name), _b(prog_license), code,
                                 len(insns) // 8, byref(opts))
    if ret < 0 and not log_level:
        # Like libbpf's object loader: ask for the log only when it failed.
        opts.log_level = 1
        ret = _L().bpf_prog_load(prog_type, _b(name), _b(prog_license), code,
                                 len(insns) // 8, byref(opts))
    if ret < 0:
        log = '\n'.join(p for p in (log_buf.value.decode('utf-8', 'replace').rstrip(),
                                    cap.text) if p)
        raise BpfError('bpf_prog_load', -ret, log, name)
    return ret


# ---------------------------------------------------------------------------
# fd-level map operations (any map fd, e.g. a pinned map from obj_get)
# ---------------------------------------------------------------------------

def map_lookup(fd, key, value_size):
    """The value of `key`, or None when absent."""
    value = create_string_buffer(value_size)
    ret = _L().bpf_map_lookup_elem(fd, bytes(key), value)
    if ret == -_errno.ENOENT:
        return None
    if ret < 0:
        raise BpfError('bpf_map_lookup_elem', -ret)
    return value.raw


def map_lookup_percpu(fd, key, value_size):
    """Per-CPU maps: the list of values, one per possible CPU, or None when absent."""
    stride = (value_size + 7) // 8 * 8  # the kernel rounds each CPU's slot to 8 bytes
    ncpu = num_possible_cpus()
    raw = map_lookup(fd, key, stride * ncpu)
    if raw is None:
        return None
    return [raw[i * stride:i * stride + value_size] for i in range(ncpu)]


def map_update(fd, key, value, flags=BPF_ANY):
    _call('bpf_map_update_elem', _L().bpf_map_update_elem, fd, bytes(key), bytes(value), flags)


def map_delete(fd, key):
    """Delete `key`; False when it was not there."""
    ret = _L().bpf_map_delete_elem(fd, bytes(key))
    if ret == -_errno.ENOENT:
        return False
    if ret < 0:
        raise BpfError('bpf_map_delete_elem', -ret)
    return True


def map_keys(fd, key_size):
    """Iterate over the keys of a map (bytes of key_size each)."""
    prev = None
    nxt = create_string_buffer(key_size)
    while True:
        ret = _L().bpf_map_get_next_key(fd, prev, nxt)
        if ret == -_errno.ENOENT:
            return
        if ret < 0:
            raise BpfError('bpf_map_get_next_key', -ret)
        key = nxt.raw
        yield key
        prev = create_string_buffer(key, key_size)


# ---------------------------------------------------------------------------
# bpffs pins
# ---------------------------------------------------------------------------

def obj_get(path):
    """Open a pinned program, map or link; returns its fd."""
    return _call('bpf_obj_get', _L().bpf_obj_get, _b(path), target=path)


def obj_pin(fd, path):
    _call('bpf_obj_pin', _L().bpf_obj_pin, fd, _b(path), target=path)


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
    return prog.fd if isinstance(prog, Program) else int(prog)


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


# ---------------------------------------------------------------------------
# Static linker
# ---------------------------------------------------------------------------

class Linker(_Owned):
    """libbpf's static BPF linker: several .o files into one (bpftool gen object)."""

    _FREE = 'bpf_linker__free'

    def __init__(self, out_path):
        self.out_path = out_path
        self._ptr = _call_ptr('bpf_linker__new', _L().bpf_linker__new, _b(out_path), None,
                              target=out_path)

    def add_file(self, path):
        _call('bpf_linker__add_file', _L().bpf_linker__add_file, self._ptr, _b(path), None,
              target=path)

    def finalize(self):
        _call('bpf_linker__finalize', _L().bpf_linker__finalize, self._ptr,
              target=self.out_path)


# ---------------------------------------------------------------------------
# BTF: read an object's functions and variables, or build BTF for probes
# ---------------------------------------------------------------------------

class _BtfType(Structure):
    # struct btf_type; 'size_or_type' is the size or type union
    _fields_ = [('name_off', c_uint32), ('info', c_uint32), ('size_or_type', c_uint32)]


class _BtfParam(Structure):
    _fields_ = [('name_off', c_uint32), ('type', c_uint32)]


class _BtfVarSecinfo(Structure):
    _fields_ = [('type', c_uint32), ('offset', c_uint32), ('size', c_uint32)]


class _BtfArray(Structure):
    _fields_ = [('type', c_uint32), ('index_type', c_uint32), ('nelems', c_uint32)]


BtfFunc = collections.namedtuple('BtfFunc', 'name linkage params ret_type_name')
BtfVar = collections.namedtuple('BtfVar', 'name linkage section')

_FUNC_LINKAGE = {BTF_FUNC_STATIC: 'static', BTF_FUNC_GLOBAL: 'global', BTF_FUNC_EXTERN: 'extern'}
_VAR_LINKAGE = {0: 'static', 1: 'global', 2: 'extern'}


class Btf(_Owned):
    """A libbpf `struct btf`: parsed from an ELF object, or built from scratch."""

    _FREE = 'btf__free'

    def __init__(self, ptr):
        self._ptr = ptr

    @classmethod
    def from_elf(cls, path):
        return cls(_call_ptr('btf__parse_elf', _L().btf__parse_elf, _b(path), None, target=path))

    @classmethod
    def new_empty(cls):
        return cls(_call_ptr('btf__new_empty', _L().btf__new_empty))

    # -- reading --------------------------------------------------------

    def _type(self, type_id):
        ptr = _L().btf__type_by_id(self._ptr, type_id)
        if not ptr:
            raise BpfError('btf__type_by_id', _errno.ENOENT, target=type_id)
        t = _BtfType.from_address(ptr)
        kind = (t.info >> 24) & 0x1f
        vlen = t.info & 0xffff
        return t, kind, vlen, ptr + ctypes.sizeof(_BtfType)

    def _name(self, off):
        return _s(_L().btf__name_by_offset(self._ptr, off)) or ''

    def type_count(self):
        return _L().btf__type_cnt(self._ptr)

    def type_name(self, type_id):
        """Readable C spelling: 'int', 'struct __sk_buff *', 'const char *', '__u32'."""
        if type_id == 0:
            return 'void'
        t, kind, vlen, extra = self._type(type_id)
        name = self._name(t.name_off)
        if kind in (BTF_KIND_INT, BTF_KIND_FLOAT, BTF_KIND_TYPEDEF):
            return name
        if kind in (BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_ENUM, BTF_KIND_ENUM64):
            tag = {BTF_KIND_STRUCT: 'struct', BTF_KIND_UNION: 'union'}.get(kind, 'enum')
            return '%s %s' % (tag, name or '(anon)')
        if kind == BTF_KIND_FWD:
            return '%s %s' % ('union' if t.info >> 31 else 'struct', name)
        if kind == BTF_KIND_PTR:
            inner = self.type_name(t.size_or_type)
            return inner + ('*' if inner.endswith('*') else ' *')
        if kind in (BTF_KIND_CONST, BTF_KIND_VOLATILE, BTF_KIND_RESTRICT):
            qual = {BTF_KIND_CONST: 'const', BTF_KIND_VOLATILE: 'volatile'}.get(kind, 'restrict')
            return '%s %s' % (qual, self.type_name(t.size_or_type))
        if kind == BTF_KIND_TYPE_TAG:
            return self.type_name(t.size_or_type)
        if kind == BTF_KIND_ARRAY:
            arr = _BtfArray.from_address(extra)
            return '%s[%d]' % (self.type_name(arr.type), arr.nelems)
        if kind == BTF_KIND_FUNC_PROTO:
            return '%s (*)(...)' % self.type_name(t.size_or_type)
        return name or '?'

    def functions(self):
        """Every FUNC: name, linkage, [(param name, type)], return type."""
        out = []
        for type_id in range(1, self.type_count()):
            t, kind, vlen, _members = self._type(type_id)
            if kind != BTF_KIND_FUNC:
                continue
            proto, pkind, nparams, params_addr = self._type(t.size_or_type)
            params = []
            for i in range(nparams):
                p = _BtfParam.from_address(params_addr + i * ctypes.sizeof(_BtfParam))
                if p.type == 0:  # trailing '...' of a variadic prototype
                    params.append(('...', '...'))
                    continue
                params.append((self._name(p.name_off), self.type_name(p.type)))
            out.append(BtfFunc(self._name(t.name_off), _FUNC_LINKAGE.get(vlen, str(vlen)),
                               params, self.type_name(proto.size_or_type)))
        return out

    def variables(self):
        """Every VAR listed in a DATASEC, with its section (.maps, .bss, license ...)."""
        out = []
        for type_id in range(1, self.type_count()):
            t, kind, vlen, extra = self._type(type_id)
            if kind != BTF_KIND_DATASEC:
                continue
            section = self._name(t.name_off)
            for i in range(vlen):
                sec = _BtfVarSecinfo.from_address(extra + i * ctypes.sizeof(_BtfVarSecinfo))
                var, vkind, var_vlen, var_extra = self._type(sec.type)
                if vkind == BTF_KIND_VAR:
                    linkage = c_uint32.from_address(var_extra).value  # struct btf_var
                    out.append(BtfVar(self._name(var.name_off),
                                      _VAR_LINKAGE.get(linkage, str(linkage)), section))
                elif vkind == BTF_KIND_FUNC:  # extern functions listed in .ksyms
                    out.append(BtfVar(self._name(var.name_off),
                                      _FUNC_LINKAGE.get(var_vlen, str(var_vlen)), section))
        return out

    # -- building (kernel probes) ---------------------------------------

    def _add(self, op, fn, *args):
        return _call(op, fn, self._ptr, *args)

    def add_int(self, name, size, encoding=0):
        return self._add('btf__add_int', _L().btf__add_int, _b(name), size, encoding)

    def add_ptr(self, type_id):
        return self._add('btf__add_ptr', _L().btf__add_ptr, type_id)

    def add_struct(self, name, size):
        return self._add('btf__add_struct', _L().btf__add_struct, _b(name), size)

    def add_func_proto(self, ret_type_id):
        return self._add('btf__add_func_proto', _L().btf__add_func_proto, ret_type_id)

    def add_func_param(self, name, type_id):
        return self._add('btf__add_func_param', _L().btf__add_func_param, _b(name), type_id)

    def add_func(self, name, linkage, proto_id):
        return self._add('btf__add_func', _L().btf__add_func, _b(name), linkage, proto_id)

    def load_into_kernel(self):
        self._add('btf__load_into_kernel', _L().btf__load_into_kernel)

    @property
    def fd(self):
        return _L().btf__fd(self._ptr)


# ---------------------------------------------------------------------------
# bpffs
# ---------------------------------------------------------------------------

def bpffs_mounted(path='/sys/fs/bpf'):
    """True when `path` is on a bpf filesystem (statfs magic BPF_FS_MAGIC)."""
    buf = create_string_buffer(256)  # struct statfs; f_type is its first field
    if _libc.statfs(_b(path), buf) != 0:
        return False
    return c_long.from_buffer(buf).value & 0xffffffff == BPFFS_MAGIC


def ensure_bpffs(path='/sys/fs/bpf'):
    """Mount bpffs at `path` when it is not there; True when it mounted it."""
    if bpffs_mounted(path):
        return False
    if not os.path.isdir(path):
        os.makedirs(path, 0o755)
    if _libc.mount(b'bpf', _b(path), b'bpf', 0, None) != 0:
        raise BpfError('mount', ctypes.get_errno(), target=path)
    return True


# ---------------------------------------------------------------------------
# Added for datapath_map (map_data.py): a map's BTF ids, BTF from the kernel by
# id, the types of a BTF, and the batch map operations (kernel 5.6+). Bound on
# first use so the table above stays the libbpf 1.1 core every module needs.
# ---------------------------------------------------------------------------

class _MapBatchOpts(Structure):
    _fields_ = [('sz', c_size_t), ('elem_flags', c_uint64), ('flags', c_uint64)]


_EXTRA_SIGNATURES = {
    'btf__load_from_kernel_by_id': (c_void_p, [c_uint32]),
    'bpf_map_lookup_batch': (c_int, [c_int, c_void_p, c_void_p, c_void_p, c_void_p,
                                     POINTER(c_uint32), c_void_p]),
    'bpf_map_update_batch': (c_int, [c_int, c_void_p, c_void_p, POINTER(c_uint32), c_void_p]),
    'bpf_map_delete_batch': (c_int, [c_int, c_void_p, POINTER(c_uint32), c_void_p]),
    'bpf_object__btf': (c_void_p, [c_void_p]),
    'bpf_map__initial_value': (c_void_p, [c_void_p, POINTER(c_size_t)]),
}


def _extra(name):
    """The libbpf function `name` of _EXTRA_SIGNATURES, typed on first use."""
    fn = getattr(_L(), name)
    if fn.argtypes is None:
        fn.restype, fn.argtypes = _EXTRA_SIGNATURES[name]
    return fn


MapBtfIds = collections.namedtuple('MapBtfIds', 'btf_id key_type_id value_type_id')


def map_btf_ids(fd):
    """The map's BTF object id and the type ids of its key and value (0 when the
    map was made without BTF, e.g. by a loader that did not pass it)."""
    info = _get_info(fd, _MapInfo())
    return MapBtfIds(info.btf_id, info.btf_key_type_id, info.btf_value_type_id)


def btf_from_kernel(btf_id):
    """The kernel's BTF object `btf_id` (a loaded program's or map's) as a Btf."""
    return Btf(_call_ptr('btf__load_from_kernel_by_id', _extra('btf__load_from_kernel_by_id'),
                         btf_id, target=btf_id))


class _BtfMember(Structure):
    _fields_ = [('name_off', c_uint32), ('type', c_uint32), ('offset', c_uint32)]


class _BtfEnum(Structure):
    _fields_ = [('name_off', c_uint32), ('val', ctypes.c_int32)]


class _BtfEnum64(Structure):
    _fields_ = [('name_off', c_uint32), ('val_lo32', c_uint32), ('val_hi32', c_uint32)]


# One BTF type as plain data (linux/btf.h): kind (BTF_KIND_*), name, size (int,
# struct, union, enum, float), ref (the type a typedef/qualifier/pointer names,
# or an array's element), nelems (array), int_bits/int_encoding (int),
# signed (enum: kind_flag), members [(name, type_id, bit_offset, bitfield_size)],
# values [(name, int)] (enum, enum64).
BtfTypeInfo = collections.namedtuple('BtfTypeInfo', [
    'id', 'kind', 'name', 'size', 'ref', 'nelems', 'int_bits', 'int_encoding', 'signed',
    'members', 'values'])


def btf_type_info(btf, type_id):
    """BtfTypeInfo of `type_id` in `btf` (a Btf)."""
    t, kind, vlen, extra = btf._type(type_id)  # pylint: disable=protected-access
    name = btf._name(t.name_off)  # pylint: disable=protected-access
    kind_flag = bool(t.info >> 31)
    size = ref = nelems = int_bits = int_encoding = None
    members, values = [], []
    if kind in (BTF_KIND_INT, BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_ENUM, BTF_KIND_ENUM64,
                BTF_KIND_FLOAT):
        size = t.size_or_type
    else:
        ref = t.size_or_type
    if kind == BTF_KIND_INT:
        word = c_uint32.from_address(extra).value
        int_encoding, int_bits = (word >> 24) & 0x0f, word & 0xff
    elif kind == BTF_KIND_ARRAY:
        arr = _BtfArray.from_address(extra)
        ref, nelems = arr.type, arr.nelems
    elif kind in (BTF_KIND_STRUCT, BTF_KIND_UNION):
        for i in range(vlen):
            m = _BtfMember.from_address(extra + i * ctypes.sizeof(_BtfMember))
            if kind_flag:  # bitfield size in the top byte of the offset
                bit_off, bit_size = m.offset & 0xffffff, m.offset >> 24
            else:
                bit_off, bit_size = m.offset, 0
            members.append((btf._name(m.name_off), m.type, bit_off, bit_size))  # pylint: disable=protected-access
    elif kind == BTF_KIND_ENUM:
        for i in range(vlen):
            e = _BtfEnum.from_address(extra + i * ctypes.sizeof(_BtfEnum))
            val = e.val if kind_flag else e.val & 0xffffffff
            values.append((btf._name(e.name_off), val))  # pylint: disable=protected-access
    elif kind == BTF_KIND_ENUM64:
        for i in range(vlen):
            e = _BtfEnum64.from_address(extra + i * ctypes.sizeof(_BtfEnum64))
            val = (e.val_hi32 << 32) | e.val_lo32
            if kind_flag and val >= 1 << 63:
                val -= 1 << 64
            values.append((btf._name(e.name_off), val))  # pylint: disable=protected-access
    return BtfTypeInfo(type_id, kind, name, size, ref, nelems, int_bits, int_encoding,
                       kind_flag, members, values)


def _batch_opts():
    return _opts(_MapBatchOpts)


def map_lookup_batch(fd, key_size, value_size, chunk):
    """Every (key, value) of a map with BPF_MAP_LOOKUP_BATCH, `chunk` entries a
    call; value_size is the whole value as the kernel copies it (per-CPU: all
    CPUs). Raises BpfError (EINVAL, ENOTSUPP...) when the map type has no batch."""
    fn = _extra('bpf_map_lookup_batch')
    keys = create_string_buffer(key_size * chunk)
    values = create_string_buffer(value_size * chunk)
    token_in = create_string_buffer(max(key_size, 8))
    token_out = create_string_buffer(max(key_size, 8))
    first = True
    out = []
    while True:
        count = c_uint32(chunk)
        ret = fn(fd, None if first else token_in, token_out, keys, values, byref(count),
                 byref(_batch_opts()))
        if ret < 0 and ret != -_errno.ENOENT:
            raise BpfError('bpf_map_lookup_batch', -ret)
        kraw, vraw = keys.raw, values.raw
        for i in range(count.value):
            out.append((kraw[i * key_size:(i + 1) * key_size],
                        vraw[i * value_size:(i + 1) * value_size]))
        if ret == -_errno.ENOENT:
            return out
        first = False
        ctypes.memmove(token_in, token_out, len(token_out))


def map_update_batch(fd, keys, values, flags=BPF_ANY):
    """BPF_MAP_UPDATE_BATCH of len(keys) entries: keys and values are the
    concatenated bytes. Raises BpfError naming how many went in before a failure."""
    fn = _extra('bpf_map_update_batch')
    count = c_uint32(len(keys))
    opts = _opts(_MapBatchOpts, elem_flags=flags)
    ret = fn(fd, b''.join(keys), b''.join(values), byref(count), byref(opts))
    if ret < 0:
        raise BpfError('bpf_map_update_batch', -ret, target='%d of %d done' % (count.value, len(keys)))


def map_delete_batch(fd, keys):
    """BPF_MAP_DELETE_BATCH of the given keys (hash maps only)."""
    fn = _extra('bpf_map_delete_batch')
    count = c_uint32(len(keys))
    ret = fn(fd, b''.join(keys), byref(count), byref(_batch_opts()))
    if ret < 0:
        raise BpfError('bpf_map_delete_batch', -ret, target='%d of %d done' % (count.value, len(keys)))


# ---------------------------------------------------------------------------
# Added for plugin config (plugin_config.py): the variables of an object's data
# sections with their offsets, and the initial value of its internal maps
# (.rodata, .data, .bss), written between open and load as libbpf's skeletons do.
# ---------------------------------------------------------------------------
DatasecVar = collections.namedtuple('DatasecVar', 'name linkage section type_id offset size')


def datasec_vars(btf):
    """Every VAR of every DATASEC of `btf` (a Btf), with its type id and its
    offset in the section. Offsets are final in an opened object's BTF
    (object_btf); clang's raw BTF may leave them 0."""
    out = []
    for type_id in range(1, btf.type_count()):
        t, kind, vlen, extra = btf._type(type_id)  # pylint: disable=protected-access
        if kind != BTF_KIND_DATASEC:
            continue
        section = btf._name(t.name_off)  # pylint: disable=protected-access
        for i in range(vlen):
            sec = _BtfVarSecinfo.from_address(extra + i * ctypes.sizeof(_BtfVarSecinfo))
            var, vkind, _vlen, var_extra = btf._type(sec.type)  # pylint: disable=protected-access
            if vkind != BTF_KIND_VAR:
                continue
            linkage = c_uint32.from_address(var_extra).value  # struct btf_var
            out.append(DatasecVar(btf._name(var.name_off),  # pylint: disable=protected-access
                                  _VAR_LINKAGE.get(linkage, str(linkage)), section,
                                  var.size_or_type, sec.offset, sec.size))
    return out


class _BorrowedBtf(Btf):
    """The BTF an open BpfObject owns: valid while it is open, never freed here."""

    def close(self):
        self._ptr = None


def object_btf(obj):
    """The BTF of an opened (not necessarily loaded) BpfObject, or None."""
    ptr = _extra('bpf_object__btf')(obj._handle())  # pylint: disable=protected-access
    return _BorrowedBtf(ptr) if ptr else None


def write_initial_value(bpf_map, offset, data):
    """Write `data` at `offset` of an internal map's initial value (before load)."""
    size = c_size_t(0)
    ptr = _extra('bpf_map__initial_value')(bpf_map._ptr, byref(size))  # pylint: disable=protected-access
    if not ptr:
        raise BpfError('bpf_map__initial_value', _errno.EINVAL, 'map has no initial value', bpf_map.name)
    if offset < 0 or offset + len(data) > size.value:
        raise BpfError('bpf_map__initial_value', _errno.ERANGE,
                       '%d bytes at offset %d do not fit its %d bytes' % (len(data), offset, size.value),
                       bpf_map.name)
    ctypes.memmove(ptr + offset, data, len(data))
