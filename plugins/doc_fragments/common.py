# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options every module of ebpf.datapath shares (see module_utils/module_common.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  bpffs_root:
    description:
      - Directory in the BPF filesystem under which the collection pins everything it makes on the host
        (plugin maps, dispatcher programs, links).
      - Must be on a mounted bpffs (normally C(/sys/fs/bpf)).
      - Use the same value for every task that manages one host. Simulated hosts on one machine (for example one per
        network namespace in a lab) each need a distinct O(bpffs_root) and O(state_dir), so their registries and pins
        never mix.
    type: path
    default: /sys/fs/bpf/ebpf-datapath
  state_dir:
    description:
      - Directory holding the host's registry of plugins, dispatchers and hooks, the lock taken for each run,
        the stored plugin objects and the compile cache.
      - Created with mode C(0700) when absent. Must survive reboots for the collection to recognise what it pinned
        before; pair each O(bpffs_root) with its own O(state_dir).
      - The two are a pair, marked on first use (C(pair.json) in O(state_dir), a C(pair-<id>) directory in
        O(bpffs_root)). A run refuses, before it makes or changes anything, a system directory (C(/), C(/etc),
        C(/var/lib), C(/sys/fs/bpf) itself, ...), a non-empty directory that is not the collection's, and a directory
        paired with another root, for example a mistyped O(state_dir) beside a live O(bpffs_root); see
        C(docs/security.md).
    type: path
    default: /var/lib/ebpf-datapath
  lock_timeout:
    description:
      - Seconds to wait for the lock under O(state_dir) when another run is changing the same host, before failing.
      - More than C(0) and at most C(86400) (one day).
    type: float
    default: 300.0
"""
