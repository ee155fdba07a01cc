# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Is a path on bpffs, and mount it where it is missing. Apart from libbpf.py
(which every run need not import) because every run asks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os

from ctypes import c_char_p, c_int, c_long, c_ulong, c_void_p

BPFFS_MAGIC = 0xCAFE4A11

_libc = None


def _c():
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL('libc.so.6', use_errno=True)
        except OSError:
            from ctypes.util import find_library
            libc = ctypes.CDLL(find_library('c'), use_errno=True)
        libc.statfs.argtypes = [c_char_p, c_void_p]
        libc.statfs.restype = c_int
        libc.mount.argtypes = [c_char_p, c_char_p, c_char_p, c_ulong, c_void_p]
        libc.mount.restype = c_int
        _libc = libc
    return _libc


def bpffs_mounted(path='/sys/fs/bpf'):
    """True when `path` is on a bpf filesystem (statfs magic BPF_FS_MAGIC)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type is its first field
    if _c().statfs(os.fsencode(path), buf) != 0:
        return False
    return c_long.from_buffer(buf).value & 0xffffffff == BPFFS_MAGIC


def ensure_bpffs(path='/sys/fs/bpf'):
    """Mount bpffs at `path` when it is not there; True when it mounted it."""
    if bpffs_mounted(path):
        return False
    if not os.path.isdir(path):
        os.makedirs(path, 0o755)
    if _c().mount(b'bpf', os.fsencode(path), b'bpf', 0, None) != 0:
        from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import BpfError
        raise BpfError('mount', ctypes.get_errno(), target=path)
    return True
