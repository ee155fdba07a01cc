# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attach backend for kernels without tcx: a cls_bpf filter in direct-action
mode under the clsact qdisc, spoken to through pyroute2.

Our filter is the one at (parent, priority, handle) holding our program id;
swapping is ``tc filter change`` at the same spot (cls_bpf replaces the program
under RCU). A qdisc we created is removed with our last filter; one we found
stays.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

from ansible_collections.ebpf.datapath.plugins.module_utils import attach as base
from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils.attach import (
    ETH_P_ALL, TC_H_CLSACT_EGRESS, TC_H_CLSACT_INGRESS, AttachConflict, AttachDrift, AttachError)
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import ClsactAttachment

# tc: the clsact qdisc, its handle, and the one filter handle we use.
TC_H_CLSACT = 0xFFFFFFF1
CLSACT_HANDLE = 0xFFFF0000
TC_FILTER_HANDLE = 1
TC_PRIO_MAX = 0xFFFF


class Clsact(base.Backend):
    """A cls_bpf filter under clsact at tc ingress or egress."""

    RECORD = ClsactAttachment

    @property
    def parent(self):
        return TC_H_CLSACT_EGRESS if self.ap.attach == "tc_egress" else TC_H_CLSACT_INGRESS

    def _record(self, ifindex, priority, handle, created_qdisc, prog_id, prog_name):
        """The attachment record of our filter: built here only."""
        return ClsactAttachment(interface=self.ap.interface, netns=self.ap.netns, ifindex=ifindex,
                                parent=self.parent, priority=priority, handle=handle, protocol=ETH_P_ALL,
                                created_qdisc=created_qdisc, prog_id=prog_id, prog_name=prog_name)

    def attach(self, prog_fd, pin_path, position=None):
        ap = self.ap
        base.need_pyroute2()
        prog = libbpf.prog_info(prog_fd)
        parent = self.parent
        with base.in_netns(ap):
            with base.IPRoute() as ipr:
                ifindex = base.ifindex_of(ipr, ap)
                qdisc = _clsact_qdisc(ipr, ifindex)
                created = False
                if qdisc is None:
                    try:
                        ipr.tc("add", "clsact", ifindex)
                        created = True
                    except base.NetlinkError as exc:
                        if exc.code != errno.EEXIST:  # someone added it meanwhile: theirs then
                            raise AttachError("cannot add the clsact qdisc on %s: %s" % (ap.where(), exc))
                elif qdisc != "clsact":
                    raise AttachConflict("%s has an %s qdisc, not clsact; cls_bpf needs clsact "
                                         "(replace it, or use the tcx backend)" % (ap.where(), qdisc))
                try:
                    filters = _tc_filters(ipr, ifindex, parent)
                    prio = _clsact_priority(ap, filters, position)
                    taken = [f for f in filters if f["prio"] == prio]
                    if taken:
                        real = [f for f in taken if not f.get("head")]
                        what = _filter_label(real[0]) if real else "a %s filter" % taken[0]["tca_kind"]
                        raise AttachConflict("tc %s priority %d on %s is taken by %s, which is not ours; "
                                             "choose another position.priority"
                                             % (ap.direction, prio, ap.where(), what))
                    try:
                        ipr.tc("add-filter", "bpf", ifindex, handle=TC_FILTER_HANDLE, parent=parent, prio=prio,
                               protocol=ETH_P_ALL, fd=prog_fd, name=prog.name or "dispatcher", direct_action=True)
                    except base.NetlinkError as exc:
                        raise AttachError("cannot add the cls_bpf filter at tc %s priority %d on %s: %s"
                                          % (ap.direction, prio, ap.where(), exc))
                except Exception:
                    if created:
                        _delete_clsact(ipr, ifindex)
                    raise
        return self._record(ifindex, prio, TC_FILTER_HANDLE, created, prog.id, prog.name)

    def _current(self, record):
        """Our filter's entry, or None when the namespace, interface or filter is gone."""
        ap = self.ap
        if base.netns_gone(ap):
            return None
        with base.in_netns(ap):
            with base.IPRoute() as ipr:
                ifindex = base.ifindex_of(ipr, ap, required=False)
                if ifindex is None or ifindex != record.ifindex:
                    return None  # the interface went away (maybe came back): our filter with it
                for f in _tc_filters(ipr, ifindex, record.parent):
                    if f["prio"] == record.priority and f["handle"] == record.handle:
                        return f
        return None

    def running_prog_id(self, record):
        base.need_pyroute2()
        found = self._current(record)
        if found is None or found["prog_id"] != record.prog_id:
            return None
        return found["prog_id"]

    def swap(self, record, new_prog_fd):
        ap = self.ap
        base.need_pyroute2()
        new = libbpf.prog_info(new_prog_fd)
        current = self._current(record)
        if current is None:
            raise AttachDrift("our cls_bpf filter at tc %s priority %d on %s is gone"
                              % (ap.direction, record.priority, ap.where()))
        if current["tca_kind"] != "bpf" or current["prog_id"] != record.prog_id:
            raise AttachDrift("the filter at tc %s priority %d on %s is now %s, not ours (program %s); "
                              "not replacing it" % (ap.direction, record.priority, ap.where(),
                                                    _filter_label(current), record.prog_id),
                              current["prog_id"])
        with base.in_netns(ap):
            with base.IPRoute() as ipr:
                try:
                    # "change" = replace in place, never create: cls_bpf swaps the
                    # program under RCU at the same parent/priority/handle.
                    ipr.tc("change-filter", "bpf", record.ifindex, handle=record.handle, parent=record.parent,
                           prio=record.priority, protocol=record.protocol or ETH_P_ALL, fd=new_prog_fd,
                           name=new.name or "dispatcher", direct_action=True)
                except base.NetlinkError as exc:
                    raise AttachError("cannot replace the cls_bpf filter at tc %s priority %d on %s: %s"
                                      % (ap.direction, record.priority, ap.where(), exc))
        return record.with_program(new.id, new.name)

    def detach(self, record):
        ap = self.ap
        base.need_pyroute2()
        current = self._current(record)
        if base.netns_gone(ap):
            return False  # the namespace took the interface, its qdisc and our filter with it
        removed = False
        with base.in_netns(ap):
            with base.IPRoute() as ipr:
                ifindex = base.ifindex_of(ipr, ap, required=False)
                if ifindex is None or ifindex != record.ifindex:
                    return False
                if current is not None and current["tca_kind"] == "bpf" and current["prog_id"] == record.prog_id:
                    try:
                        ipr.tc("del-filter", "bpf", ifindex, handle=record.handle, parent=record.parent,
                               prio=record.priority, protocol=record.protocol or ETH_P_ALL)
                        removed = True
                    except base.NetlinkError as exc:
                        if exc.code != errno.ENOENT:
                            raise AttachError("cannot delete our cls_bpf filter at tc %s priority %d on %s: %s"
                                              % (ap.direction, record.priority, ap.where(), exc))
                if record.created_qdisc and _clsact_qdisc(ipr, ifindex) == "clsact":
                    left = (_tc_filters(ipr, ifindex, TC_H_CLSACT_INGRESS) +
                            _tc_filters(ipr, ifindex, TC_H_CLSACT_EGRESS))
                    if not left:
                        _delete_clsact(ipr, ifindex)
        return removed

    def find(self, prog_id):
        """Our filter holding prog_id, put there by a run killed before its save.
        Of the qdisc we cannot tell whether that run created it, so the record
        says it did not: removal then leaves the qdisc in place."""
        ap = self.ap
        base.need_pyroute2()
        if base.netns_gone(ap):
            return None
        with base.in_netns(ap):
            with base.IPRoute() as ipr:
                ifindex = base.ifindex_of(ipr, ap, required=False)
                if ifindex is None or _clsact_qdisc(ipr, ifindex) != "clsact":
                    return None
                for f in _tc_filters(ipr, ifindex, self.parent):
                    if f["tca_kind"] == "bpf" and f["prog_id"] == prog_id:
                        return self._record(ifindex, f["prio"], f["handle"], False, prog_id, f["name"])
        return None


# ---------------------------------------------------------------------------
# helpers


def cls_bpf_options_class(nla):
    class ClsBpfOptions(nla):
        """cls_bpf's TCA_OPTIONS, all attributes: pyroute2 0.7/0.9 stop at TCA_BPF_FLAGS
        and leave TCA_BPF_ID (the program id we check ownership with) undecoded."""

        nla_map = (
            ("TCA_BPF_UNSPEC", "none"),
            ("TCA_BPF_ACT", "hex"),
            ("TCA_BPF_POLICE", "hex"),
            ("TCA_BPF_CLASSID", "uint32"),
            ("TCA_BPF_OPS_LEN", "uint16"),
            ("TCA_BPF_OPS", "hex"),
            ("TCA_BPF_FD", "uint32"),
            ("TCA_BPF_NAME", "asciiz"),
            ("TCA_BPF_FLAGS", "uint32"),
            ("TCA_BPF_FLAGS_GEN", "uint32"),
            ("TCA_BPF_TAG", "hex"),
            ("TCA_BPF_ID", "uint32"),
        )

    return ClsBpfOptions


def _tc_filters(ipr, ifindex, parent):
    """[{prio, handle, tca_kind, prog_id, name}] of the filters under one clsact hook."""
    found = []
    for msg in ipr.get_filters(index=ifindex, parent=parent):
        if msg["parent"] != parent:
            continue
        entry = {"prio": msg["info"] >> 16, "handle": msg["handle"], "tca_kind": msg.get_attr("TCA_KIND"),
                 "prog_id": None, "name": None}
        opts = msg.get_attr("TCA_OPTIONS")
        if msg["handle"] == 0:
            # The per-priority head entry of a dump; the filters follow it.
            entry["head"] = True
        elif entry["tca_kind"] == "bpf" and opts is not None:
            full = base.ClsBpfOptions(data=opts.data, offset=opts.offset, length=opts.length)
            full.decode()
            entry["prog_id"] = full.get_attr("TCA_BPF_ID")
            entry["name"] = full.get_attr("TCA_BPF_NAME")
        found.append(entry)
    return found


def _clsact_qdisc(ipr, ifindex):
    """The kind of the qdisc at the ingress/clsact spot ('clsact', 'ingress') or None."""
    for q in ipr.get_qdiscs(ifindex):
        if q["handle"] == CLSACT_HANDLE and q["parent"] == TC_H_CLSACT:
            return q.get_attr("TCA_KIND")
    return None


def _filter_label(f):
    if f["tca_kind"] == "bpf":
        return "bpf filter %r (program %s)" % (f["name"], f["prog_id"])
    return "%s filter" % f["tca_kind"]


def _clsact_priority(ap, filters, position):
    position = position or {}
    unknown = set(position) - set(["priority", "anchor", "prog_id"])
    if unknown:
        raise AttachError("clsact position takes priority or anchor/prog_id, not %s" % ", ".join(sorted(unknown)))
    used = sorted(set(f["prio"] for f in filters))
    if "priority" in position:
        prio = int(position["priority"])
        if not 1 <= prio <= TC_PRIO_MAX:
            raise AttachError("tc priority must be between 1 and %d, got %s" % (TC_PRIO_MAX, prio))
        return prio
    anchor = position.get("anchor", "last")
    if anchor == "first":
        return 1
    if anchor == "last":
        if not used:
            return 1
        if used[-1] >= TC_PRIO_MAX:
            raise AttachError("no tc priority left after %d at tc %s on %s" % (used[-1], ap.direction, ap.where()))
        return used[-1] + 1
    if anchor in ("before", "after"):
        other = [f for f in filters if f["prog_id"] and f["prog_id"] == position.get("prog_id")]
        if not other:
            raise AttachError("anchor %s program %s: no such bpf filter at tc %s on %s"
                              % (anchor, position.get("prog_id"), ap.direction, ap.where()))
        prio = other[0]["prio"] + (-1 if anchor == "before" else 1)
        if not 1 <= prio <= TC_PRIO_MAX or prio in used:
            raise AttachError("no free tc priority right %s program %s (priority %d) at tc %s on %s; "
                              "give position.priority instead"
                              % (anchor, position.get("prog_id"), other[0]["prio"], ap.direction, ap.where()))
        return prio
    raise AttachError("unknown anchor %r (first, last, before, after)" % (anchor,))


def _delete_clsact(ipr, ifindex):
    try:
        ipr.tc("del", "clsact", ifindex)
    except base.NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.EINVAL):
            raise
