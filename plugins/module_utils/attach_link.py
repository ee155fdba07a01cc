# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attach backends built on a pinned bpf_link: tcx (tc ingress/egress,
kernel >= 6.6) and XDP.

The link is pinned under the dispatcher's bpffs directory, named after the
generation that attached it; the pin keeps the attachment alive after the run
exits. Swapping is BPF_LINK_UPDATE with the old program given, a
compare-and-swap in the kernel. A link whose interface went away stays pinned
but reports ifindex 0: it counts as gone.

Reading the pinned link needs libbpf.py only; the link calls (bpf_link.py)
are imported by the operations that change the attachment.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

from ansible_collections.ebpf.datapath.plugins.module_utils import attach as base
from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachConflict, AttachDrift, AttachError
from ansible_collections.ebpf.datapath.plugins.module_utils.files import makedirs_private
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import TcxAttachment, XdpAttachment

# XDP attach flags (include/uapi/linux/if_link.h)
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2


class LinkBackend(base.Backend):
    """What tcx and XDP links share: running program, swap and detach by pin."""

    def running_prog_id(self, record):
        return base.attached_prog_id(self.ap, record)  # reads the pinned link, as every run's check does

    def swap(self, record, new_prog_fd):
        from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
        ap = self.ap
        new = libbpf.prog_info(new_prog_fd)
        pin = record.link_pin
        info = base.pinned_link(record)
        if info is None:
            raise AttachDrift("our link at %s is gone (pin %s missing or its interface was removed)"
                              % (ap.describe(), pin))
        if info.prog_id != record.prog_id:
            raise AttachDrift("our link at %s now runs program %s, not %s as recorded; not replacing it"
                              % (ap.describe(), base.prog_label(info.prog_id), record.prog_id), info.prog_id)
        link_fd = libbpf.obj_get(pin)
        try:
            old_fd = libbpf.prog_fd_by_id(record.prog_id)
            try:
                # Compare-and-swap in the kernel: EPERM if the link's program changed meanwhile.
                bpf_link.link_update(link_fd, new_prog_fd, old_prog_fd=old_fd)
            except libbpf.BpfError as exc:
                if exc.errno == errno.EPERM:
                    raise AttachDrift("our link at %s changed program while swapping; not replacing it"
                                      % ap.describe())
                raise AttachError("cannot swap the program of the link at %s: %s" % (ap.describe(), exc))
            finally:
                libbpf.close_fd(old_fd)
        finally:
            libbpf.close_fd(link_fd)
        return record.with_program(new.id, new.name)

    def detach(self, record):
        from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
        pin = record.link_pin
        fd = base.open_pin(pin, "the pinned link")
        if fd is None:
            return False
        removed = False
        try:
            try:
                info = libbpf.link_info(fd)
            except libbpf.BpfError:
                info = None  # not a link: just drop the pin below
            # Only the link we made: a pin path is ours, but a link someone re-pinned there is not.
            if info is not None and info.ifindex and info.id == record.link_id:
                try:
                    # Detach even if someone else still holds a reference to the link.
                    bpf_link.link_detach(fd)
                    removed = True
                except libbpf.BpfError as exc:
                    if exc.errno not in (errno.ENOLINK, errno.EINVAL, errno.ENOENT):
                        raise AttachError("cannot detach the link pinned at %s: %s" % (pin, exc))
        finally:
            libbpf.close_fd(fd)
        try:
            os.unlink(pin)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise AttachError("cannot remove the pin %s: %s" % (pin, exc))
        return removed


class TcxLink(LinkBackend):
    """A tcx bpf_link at tc ingress or egress."""

    RECORD = TcxAttachment

    def attach(self, prog_fd, pin_path, position=None):
        ap = self.ap
        base.need_pyroute2()
        prog = libbpf.prog_info(prog_fd)
        attach_type = libbpf.BPF_TCX_EGRESS if ap.attach == "tc_egress" else libbpf.BPF_TCX_INGRESS
        anchor, relative = tcx_anchor(position)
        ensure_pin_dir(pin_path)
        with base.in_netns(ap):
            with base.IPRoute() as ipr:
                ifindex = base.ifindex_of(ipr, ap)
            try:
                link_fd = _tcx_create(prog_fd, ifindex, attach_type, anchor, relative)
            except libbpf.BpfError as exc:
                # ENOENT: no such program; EINVAL: it exists but is not at this hook.
                if anchor in ("before", "after") and exc.errno in (errno.ENOENT, errno.EINVAL):
                    there = _tcx_prog_ids(ifindex, attach_type)
                    if relative not in there:
                        raise AttachError("tcx anchor %s program %s: no such program at tc %s on %s (programs "
                                          "there: %s); give the id of one of them in position.prog_id"
                                          % (anchor, relative, ap.direction, ap.where(),
                                             ", ".join(str(i) for i in there) or "none"))
                if exc.errno == errno.EINVAL:
                    from ansible_collections.ebpf.datapath.plugins.module_utils import probe
                    if not probe.has_tcx():
                        raise AttachError("this kernel has no tcx (needs Linux >= 6.6; %s); use the clsact backend"
                                          % exc)
                raise AttachError("cannot attach a tcx link to tc %s on %s: %s" % (ap.direction, ap.where(), exc))
        try:
            info = pin_link(link_fd, pin_path)
        finally:
            libbpf.close_fd(link_fd)
        return TcxAttachment(interface=ap.interface, netns=ap.netns, ifindex=ifindex,
                             attach_type="tcx_" + ap.direction, link_id=info.id, link_pin=pin_path,
                             prog_id=prog.id, prog_name=prog.name)


class XdpLink(LinkBackend):
    """An XDP bpf_link on an interface (native when the driver has it)."""

    RECORD = XdpAttachment

    def attach(self, prog_fd, pin_path, position=None):
        from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
        ap = self.ap
        base.need_pyroute2()
        prog = libbpf.prog_info(prog_fd)
        flags = {"auto": 0, "native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE}[ap.xdp_mode]
        ensure_pin_dir(pin_path)
        with base.in_netns(ap):
            with base.IPRoute() as ipr:
                ifindex = base.ifindex_of(ipr, ap)
                foreign = xdp_attached(ipr, ifindex)
                if foreign:
                    raise AttachConflict(_xdp_conflict_message(ap, foreign))
                try:
                    link_fd = bpf_link.link_create(prog_fd, ifindex, libbpf.BPF_XDP, flags)
                except libbpf.BpfError as exc:
                    if exc.errno in (errno.EBUSY, errno.EEXIST):
                        # Raced with another tool between our look and our attach.
                        raise AttachConflict(_xdp_conflict_message(ap, xdp_attached(ipr, ifindex)))
                    raise AttachError("cannot attach an XDP link (%s mode) to %s: %s"
                                      % (ap.xdp_mode, ap.where(), exc))
                try:
                    info = pin_link(link_fd, pin_path)
                    modes = [mode for _prog_id, mode in xdp_attached(ipr, ifindex)]
                finally:
                    libbpf.close_fd(link_fd)
        return XdpAttachment(interface=ap.interface, netns=ap.netns, ifindex=ifindex,
                             xdp_mode=modes[0] if modes else ap.xdp_mode, link_id=info.id, link_pin=pin_path,
                             prog_id=prog.id, prog_name=prog.name)

    def conflicts(self, record=None):
        """A program on the interface that is not our attachment's."""
        ap = self.ap
        base.need_pyroute2()
        with base.in_netns(ap):
            with base.IPRoute() as ipr:
                ifindex = base.ifindex_of(ipr, ap)
                attached = xdp_attached(ipr, ifindex)
        ours = record.prog_id if record else None
        for prog_id, mode in attached:
            if prog_id != ours:
                return "XDP program %s is already attached to %s (%s)" % (base.prog_label(prog_id), ap.where(), mode)
        return None


# ---------------------------------------------------------------------------
# helpers


def ensure_pin_dir(pin_path):
    makedirs_private(os.path.dirname(pin_path))
    if os.path.lexists(pin_path):
        raise AttachError("pin path %s already exists; a previous attachment was not cleaned up "
                          "(remove it once nothing uses it)" % pin_path)


def pin_link(link_fd, pin_path):
    """Pin a fresh link. The caller closes its fd either way: pinned, the link
    lives on; unpinned (pinning failed), closing it detaches it again."""
    try:
        libbpf.obj_pin(link_fd, pin_path)
    except libbpf.BpfError as exc:
        raise AttachError("cannot pin the link at %s: %s" % (pin_path, exc))
    return libbpf.link_info(link_fd)


def tcx_anchor(position):
    """(anchor, relative prog id) from a position; default: last."""
    position = position or {}
    unknown = set(position) - set(["anchor", "prog_id"])
    if unknown:
        raise AttachError("tcx position takes anchor and prog_id, not %s" % ", ".join(sorted(unknown)))
    anchor = position.get("anchor", "last")
    if anchor not in ("first", "last", "before", "after"):
        raise AttachError("unknown tcx anchor %r (first, last, before, after)" % (anchor,))
    relative = position.get("prog_id")
    if anchor in ("before", "after") and not relative:
        raise AttachError("tcx anchor %s needs prog_id, the id of the program to go %s" % (anchor, anchor))
    if anchor in ("first", "last") and relative:
        raise AttachError("tcx anchor %s takes no prog_id" % anchor)
    return anchor, relative


def _tcx_prog_ids(ifindex, attach_type):
    """Programs at a tcx hook (in the current network namespace), [] if unknown."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
    try:
        return bpf_link.prog_query(ifindex, attach_type).prog_ids
    except libbpf.BpfError:
        return []


def _tcx_create(prog_fd, ifindex, attach_type, anchor, relative):
    from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
    if anchor == "first":
        return bpf_link.tcx_link_create(prog_fd, ifindex, attach_type, before=0)
    if anchor == "before":
        return bpf_link.tcx_link_create(prog_fd, ifindex, attach_type, before=relative, relative_id=True)
    if anchor == "after":
        return bpf_link.tcx_link_create(prog_fd, ifindex, attach_type, after=relative, relative_id=True)
    return bpf_link.tcx_link_create(prog_fd, ifindex, attach_type, after=0)


def xdp_attached(ipr, ifindex):
    """[(prog_id, mode)] of XDP programs on the interface, links included."""
    links = ipr.get_links(ifindex)
    xdp = links[0].get_attr("IFLA_XDP") if links else None
    if xdp is None:
        return []
    mode = xdp.get_attr("IFLA_XDP_ATTACHED")
    found = []
    for attr, label in (("IFLA_XDP_DRV_PROG_ID", "native"), ("IFLA_XDP_SKB_PROG_ID", "generic"),
                        ("IFLA_XDP_HW_PROG_ID", "offload")):
        prog_id = xdp.get_attr(attr)
        if prog_id:
            found.append((prog_id, label))
    if not found and xdp.get_attr("IFLA_XDP_PROG_ID"):
        # Single-mode attachment: the kernel reports only IFLA_XDP_PROG_ID.
        label = {"xdp": "native", "xdpgeneric": "generic", "xdpoffload": "offload"}.get(mode, str(mode))
        found.append((xdp.get_attr("IFLA_XDP_PROG_ID"), label))
    return found


def _xdp_conflict_message(ap, attached):
    if not attached:
        return "another XDP program or link holds %s" % ap.where()
    desc = ", ".join("%s in %s mode" % (base.prog_label(pid), mode) for pid, mode in attached)
    return ("XDP program %s is already attached to %s; it is not ours and is left alone "
            "(detach it first, or put the dispatcher elsewhere)" % (desc, ap.where()))
