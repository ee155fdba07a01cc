# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a pinned map into plain values, for facts, reports and tests.

Keys and values of 1, 2, 4 or 8 bytes are read as little-endian unsigned
integers (the host order of the x86 and arm64 machines we run on); per-CPU
values are summed, as a counter's reader wants. Anything else is returned as
hex so nothing is hidden.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import struct

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps

_INT_FORMATS = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}

# Per-CPU map types: their values are one per CPU, summed for a reader.
PERCPU_TYPES = (libbpf.BPF_MAP_TYPE_PERCPU_HASH, libbpf.BPF_MAP_TYPE_PERCPU_ARRAY,
                libbpf.BPF_MAP_TYPE_LRU_PERCPU_HASH, libbpf.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE)
# Map types whose values are not data (prog arrays, maps of maps, ring buffers...).
_OPAQUE_TYPES = (libbpf.BPF_MAP_TYPE_PROG_ARRAY, libbpf.BPF_MAP_TYPE_PERF_EVENT_ARRAY,
                 libbpf.BPF_MAP_TYPE_ARRAY_OF_MAPS, libbpf.BPF_MAP_TYPE_HASH_OF_MAPS, libbpf.BPF_MAP_TYPE_RINGBUF)


def decode(raw):
    fmt = _INT_FORMATS.get(len(raw))
    if fmt:
        return struct.unpack(fmt, raw)[0]
    return binascii.hexlify(raw).decode("ascii")


def read_pinned(path, limit=4096):
    """{key: value} of the map pinned at path (at most limit entries)."""
    fd = libbpf.obj_get(path)
    try:
        info = libbpf.map_info(fd)
        if info.type in _OPAQUE_TYPES:
            return {}
        entries = {}
        for n, key in enumerate(bpf_maps.map_keys(fd, info.key_size)):
            if n >= limit:
                break
            if info.type in PERCPU_TYPES:
                values = bpf_maps.map_lookup_percpu(fd, key, info.value_size)
                if values is None:
                    continue
                if len(values[0]) in _INT_FORMATS:
                    value = sum(decode(v) for v in values)
                else:
                    value = [decode(v) for v in values]
            else:
                raw = bpf_maps.map_lookup(fd, key, info.value_size)
                if raw is None:
                    continue  # deleted while we walked the keys
                value = decode(raw)
            entries[decode(key)] = value
        return entries
    finally:
        libbpf.close_fd(fd)
