# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A BPF ELF object through libbpf's high-level API: open, set up, load,
its programs and maps (BpfObject, Program, Map), the raw program load of
probes (prog_load) and the static linker (Linker). The ctypes binding itself
is libbpf.py; reading BTF is bpf_btf.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno as _errno

from ctypes import POINTER, Structure, byref, c_bool, c_char_p, c_int, c_size_t, c_uint32, c_void_p, create_string_buffer

from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import (
    KERNEL_LOG_SIZE, BpfError, _b, _call, _call_ptr, _Capture, _L, _opts, _Owned, _s, declare)
from ansible_collections.ebpf.datapath.plugins.module_utils.bpf_link import Link

# The libbpf functions this file calls (libbpf.declare)
declare([
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
    ('bpf_map__initial_value', c_void_p, [c_void_p, POINTER(c_size_t)]),
    # raw program loads (probes)
    ('bpf_prog_load', c_int, [c_int, c_char_p, c_char_p, c_void_p, c_size_t, c_void_p]),
    # static linker
    ('bpf_linker__new', c_void_p, [c_char_p, c_void_p]),
    ('bpf_linker__add_file', c_int, [c_void_p, c_char_p, c_void_p]),
    ('bpf_linker__finalize', c_int, [c_void_p]),
    ('bpf_linker__free', None, [c_void_p]),
])


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


# ---------------------------------------------------------------------------
# Objects, programs, maps (libbpf's high-level API)
# ---------------------------------------------------------------------------

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


def write_initial_value(bpf_map, offset, data):
    """Write `data` at `offset` of an internal map's initial value (before load)."""
    size = c_size_t(0)
    ptr = _L().bpf_map__initial_value(bpf_map._ptr, byref(size))  # pylint: disable=protected-access
    if not ptr:
        raise BpfError('bpf_map__initial_value', _errno.EINVAL, 'map has no initial value', bpf_map.name)
    if offset < 0 or offset + len(data) > size.value:
        raise BpfError('bpf_map__initial_value', _errno.ERANGE,
                       '%d bytes at offset %d do not fit its %d bytes' % (len(data), offset, size.value),
                       bpf_map.name)
    ctypes.memmove(ptr + offset, data, len(data))
