# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Map elements by fd (any map fd, e.g. a pinned map from libbpf.obj_get):
lookup, update, delete, key iteration, the batch operations of kernel 5.6+
(map_data.py) and a map's BTF ids. Through libbpf, like the rest of the
binding (libbpf.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import ctypes
import errno as _errno

from ctypes import POINTER, Structure, byref, c_int, c_size_t, c_uint32, c_uint64, c_void_p, create_string_buffer

from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import (
    BPF_ANY, BpfError, _call, _get_info, _L, _MapInfo, _opts, declare, num_possible_cpus)

declare([
    ('bpf_map_lookup_elem', c_int, [c_int, c_void_p, c_void_p]),
    ('bpf_map_update_elem', c_int, [c_int, c_void_p, c_void_p, c_uint64]),
    ('bpf_map_delete_elem', c_int, [c_int, c_void_p]),
    ('bpf_map_get_next_key', c_int, [c_int, c_void_p, c_void_p]),
    ('bpf_map_lookup_batch', c_int, [c_int, c_void_p, c_void_p, c_void_p, c_void_p, POINTER(c_uint32), c_void_p]),
    ('bpf_map_update_batch', c_int, [c_int, c_void_p, c_void_p, POINTER(c_uint32), c_void_p]),
    ('bpf_map_delete_batch', c_int, [c_int, c_void_p, POINTER(c_uint32), c_void_p]),
])


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


# Batch operations (kernel 5.6+) and BTF ids, for datapath_map (map_data.py)

class _MapBatchOpts(Structure):
    _fields_ = [('sz', c_size_t), ('elem_flags', c_uint64), ('flags', c_uint64)]


MapBtfIds = collections.namedtuple('MapBtfIds', 'btf_id key_type_id value_type_id')


def map_btf_ids(fd):
    """The map's BTF object id and the type ids of its key and value (0 when the
    map was made without BTF, e.g. by a loader that did not pass it)."""
    info = _get_info(fd, _MapInfo())
    return MapBtfIds(info.btf_id, info.btf_key_type_id, info.btf_value_type_id)


def _batch_opts():
    return _opts(_MapBatchOpts)


def map_lookup_batch(fd, key_size, value_size, chunk):
    """Every (key, value) of a map with BPF_MAP_LOOKUP_BATCH, `chunk` entries a
    call; value_size is the whole value as the kernel copies it (per-CPU: all
    CPUs). Raises BpfError (EINVAL, ENOTSUPP...) when the map type has no batch."""
    fn = _L().bpf_map_lookup_batch
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
    fn = _L().bpf_map_update_batch
    count = c_uint32(len(keys))
    opts = _opts(_MapBatchOpts, elem_flags=flags)
    ret = fn(fd, b''.join(keys), b''.join(values), byref(count), byref(opts))
    if ret < 0:
        raise BpfError('bpf_map_update_batch', -ret, target='%d of %d done' % (count.value, len(keys)))


def map_delete_batch(fd, keys):
    """BPF_MAP_DELETE_BATCH of the given keys (hash maps only)."""
    fn = _L().bpf_map_delete_batch
    count = c_uint32(len(keys))
    ret = fn(fd, b''.join(keys), byref(count), byref(_batch_opts()))
    if ret < 0:
        raise BpfError('bpf_map_delete_batch', -ret, target='%d of %d done' % (count.value, len(keys)))
