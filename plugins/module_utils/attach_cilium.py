# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attach backend for a slot of Cilium's per-endpoint custom-call prog array
(``cilium_calls_custom_%05d`` under Cilium's bpffs globals directory).

Cilium tail-calls the slot; putting our program there is one element store,
so a tail call sees the old program or the new one. The slot is ours while it
holds our program id; a program someone else put there is left alone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

from ansible_collections.ebpf.datapath.plugins.module_utils import attach as base
from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps
from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachConflict, AttachDrift, AttachError
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import CiliumAttachment


class CiliumSlot(base.Backend):
    """One slot (endpoint, custom_hook) of Cilium's custom-call prog array."""

    RECORD = CiliumAttachment

    def _record(self, prog_id, prog_name):
        """The attachment record of the slot: built here only."""
        ap = self.ap
        return CiliumAttachment(map_path=ap.cilium_map_path, endpoint=int(ap.endpoint), custom_hook=ap.custom_hook,
                                key=ap.cilium_key, prog_id=prog_id, prog_name=prog_name)

    def attach(self, prog_fd, pin_path=None, position=None):
        ap = self.ap
        prog = libbpf.prog_info(prog_fd)
        record = self._record(prog.id, prog.name)
        fd = _open_map(record)
        if fd is None:
            raise AttachError("Cilium is not running with custom calls for endpoint %s (no %s)"
                              % (ap.endpoint, record.map_path))
        try:
            info = libbpf.map_info(fd)
            if info.type != libbpf.BPF_MAP_TYPE_PROG_ARRAY or ap.cilium_key >= info.max_entries:
                raise AttachError("%s is not a Cilium custom-call prog array (type %s, %s entries)"
                                  % (record.map_path, info.type, info.max_entries))
            conflict = self.conflicts()
            if conflict:
                raise AttachConflict(conflict + "; it is not ours and is left alone")
            try:
                bpf_maps.map_update(fd, _u32(ap.cilium_key), _u32(prog_fd))
            except libbpf.BpfError as exc:
                raise AttachError("cannot put program %s into the %s: %s" % (prog.id, ap.describe(), exc))
        finally:
            libbpf.close_fd(fd)
        return record

    def running_prog_id(self, record):
        current = slot_prog_id(record.map_path, record.key)
        return current if current == record.prog_id else None

    def swap(self, record, new_prog_fd):
        ap = self.ap
        new = libbpf.prog_info(new_prog_fd)
        current = slot_prog_id(record.map_path, record.key)
        if current != record.prog_id:
            what = "empty" if current is None else "holds program %s" % base.prog_label(current)
            raise AttachDrift("the %s is %s, not our program %s; not replacing it"
                              % (ap.describe(), what, record.prog_id), current)
        fd = _open_map(record)
        if fd is None:
            raise AttachDrift("Cilium's custom-call map %s is gone" % record.map_path)
        try:
            # One element store: a tail call sees the old program or the new one.
            bpf_maps.map_update(fd, _u32(record.key), _u32(new_prog_fd))
        except libbpf.BpfError as exc:
            raise AttachError("cannot update the %s: %s" % (ap.describe(), exc))
        finally:
            libbpf.close_fd(fd)
        return record.with_program(new.id, new.name)

    def detach(self, record):
        # Look, then delete: the kernel has no compare-and-delete for map elements;
        # the window is one syscall wide and only another writer of this slot can hit it.
        if slot_prog_id(record.map_path, record.key) != record.prog_id:
            return False
        fd = _open_map(record)
        if fd is None:
            return False
        try:
            return bpf_maps.map_delete(fd, _u32(record.key))
        except libbpf.BpfError as exc:
            raise AttachError("cannot clear slot %s of %s: %s" % (record.key, record.map_path, exc))
        finally:
            libbpf.close_fd(fd)

    def find(self, prog_id):
        record = self._record(prog_id, None)
        return record if slot_prog_id(record.map_path, record.key) == prog_id else None

    def conflicts(self, record=None):
        """A program in the slot that is not ours."""
        current = slot_prog_id(self.ap.cilium_map_path, self.ap.cilium_key)
        if current is not None and current != (record.prog_id if record else None):
            return "program %s is already in the %s" % (base.prog_label(current), self.ap.describe())
        return None


def _open_map(record):
    """fd of the slot's prog array, or None when it is not pinned."""
    return base.open_pin(record.map_path, "Cilium's custom-call map")


def slot_prog_id(map_path, key):
    """Program id in the slot, or None (empty slot, or no map)."""
    fd = base.open_pin(map_path, "Cilium's custom-call map")
    if fd is None:
        return None
    try:
        raw = bpf_maps.map_lookup(fd, _u32(key), 4)
    except libbpf.BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise AttachError("cannot read slot %s of %s: %s" % (key, map_path, exc))
    finally:
        libbpf.close_fd(fd)
    if raw is None:
        return None
    # From user space a prog array answers with the program's id.
    return int.from_bytes(raw[:4], "little") or None


def _u32(value):
    return int(value).to_bytes(4, "little")
