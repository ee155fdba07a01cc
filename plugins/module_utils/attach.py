# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attach points: put a dispatcher there, swap it atomically, take it away.

An attach point is where a dispatcher lives (see ``AttachPoint``):

* ``tc_ingress`` / ``tc_egress`` on an interface, through one of two backends:
  ``tcx`` (a tcx bpf_link, kernel >= 6.6) or ``clsact`` (a cls_bpf filter in
  direct-action mode under the clsact qdisc, for older kernels);
* ``xdp`` on an interface, always through an XDP bpf_link: a link cannot be
  silently replaced by another tool, and it dies with its last reference;
* ``cilium_custom``: a slot of Cilium's per-endpoint custom-call prog array.

Each function takes the ``AttachPoint`` and, after the first attachment, the
*attachment record* that ``attach`` returned: a JSON-serialisable dict the
caller stores in its registry. Everything that looks at an interface runs
inside the attach point's network namespace; bpffs pins are global.

The one rule of this file: we change only what is ours. ``swap`` refuses when
the attachment drifted (``AttachDrift``), ``attach`` refuses when a foreign
program occupies the spot (``AttachConflict``), ``detach`` removes our own
objects and leaves everything else as found.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import os

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.state import makedirs_private

# pyroute2 is imported on first netlink use (_need_pyroute2): its package
# __init__ loads every pyroute2 module (NDB, IPDB, asyncio, http.server), about
# half of a module's start-up, and most tasks never touch netlink.
IPRoute = None
pyroute2_netns = None
_ClsBpfOptions = None


class NetlinkError(Exception):
    """Replaced by pyroute2's own class when it is imported; matches nothing before."""


KINDS = ("tc_ingress", "tc_egress", "xdp", "cilium_custom")
TC_BACKENDS = ("auto", "tcx", "clsact")
XDP_MODES = ("auto", "native", "generic")

# Cilium's custom-call prog array: one per endpoint, four slots.
DEFAULT_CILIUM_GLOBALS = "/sys/fs/bpf/tc/globals"
CILIUM_CUSTOM_MAP = "cilium_calls_custom_%05d"
CILIUM_CUSTOM_HOOKS = {"ipv4_ingress": 0, "ipv4_egress": 1, "ipv6_ingress": 2, "ipv6_egress": 3}

# XDP attach flags (include/uapi/linux/if_link.h)
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2

# tc: clsact's two hooks, "all protocols", and the one handle we use.
TC_H_CLSACT = 0xFFFFFFF1
TC_H_CLSACT_INGRESS = 0xFFFFFFF2
TC_H_CLSACT_EGRESS = 0xFFFFFFF3
CLSACT_HANDLE = 0xFFFF0000
ETH_P_ALL = 0x0003
TC_FILTER_HANDLE = 1
TC_PRIO_MAX = 0xFFFF


class AttachError(DatapathError):
    """The attach point cannot be used as asked; the message says what to fix."""


class AttachConflict(AttachError):
    """Something that is not ours occupies the attach point."""


class _TcxUnsupported(AttachError):
    """The kernel does not know tcx (attach type refused with EINVAL)."""


class AttachDrift(AttachError):
    """Our attachment is no longer what we recorded; nothing was changed.

    ``current_prog_id`` is the program there now (None when the attachment is gone).
    """

    def __init__(self, message, current_prog_id=None):
        super(AttachDrift, self).__init__(message)
        self.current_prog_id = current_prog_id


class AttachPoint:
    """Where a dispatcher lives.

    kind            tc_ingress | tc_egress | xdp | cilium_custom
    interface       the interface name (tc and xdp)
    netns           a network namespace name (``ip netns``) or a path to one; None = ours
    backend         tc only: auto | tcx | clsact (auto = tcx when the kernel has it)
    xdp_mode        xdp only: auto (the kernel picks native when the driver has it,
                    else generic) | native | generic
    endpoint        cilium_custom: the Cilium endpoint id
    custom_hook     cilium_custom: ipv4_ingress | ipv4_egress | ipv6_ingress | ipv6_egress
    cilium_globals  cilium_custom: Cilium's bpffs globals directory
    """

    def __init__(self, kind, interface=None, netns=None, backend=None, xdp_mode=None,
                 endpoint=None, custom_hook=None, cilium_globals=None):
        if kind not in KINDS:
            raise AttachError("unknown attach point %r (expected one of %s)" % (kind, ", ".join(KINDS)))
        self.kind = kind
        self.interface = interface
        self.netns = netns or None
        self.backend = backend or "auto"
        self.xdp_mode = xdp_mode or "auto"
        self.endpoint = endpoint
        self.custom_hook = custom_hook
        self.cilium_globals = cilium_globals or DEFAULT_CILIUM_GLOBALS
        if kind == "cilium_custom":
            if endpoint is None or not 0 <= int(endpoint) <= 0xFFFF:
                raise AttachError("cilium_custom needs an endpoint id between 0 and 65535, got %r" % (endpoint,))
            if custom_hook not in CILIUM_CUSTOM_HOOKS:
                raise AttachError("cilium_custom needs custom_hook, one of %s; got %r"
                                  % (", ".join(sorted(CILIUM_CUSTOM_HOOKS)), custom_hook))
        else:
            if not interface:
                raise AttachError("attach point %s needs an interface" % kind)
            if kind.startswith("tc_") and self.backend not in TC_BACKENDS:
                raise AttachError("unknown tc backend %r (expected one of %s)" % (backend, ", ".join(TC_BACKENDS)))
            if kind == "xdp" and self.xdp_mode not in XDP_MODES:
                raise AttachError("unknown xdp mode %r (expected one of %s)" % (xdp_mode, ", ".join(XDP_MODES)))

    @property
    def direction(self):
        return "egress" if self.kind == "tc_egress" else "ingress"

    @property
    def cilium_map_path(self):
        return os.path.join(self.cilium_globals, CILIUM_CUSTOM_MAP % int(self.endpoint))

    @property
    def cilium_key(self):
        return CILIUM_CUSTOM_HOOKS[self.custom_hook]

    def namespace(self):
        """'network namespace ns1' / 'the host network namespace'."""
        return "network namespace %s" % self.netns if self.netns else "the host network namespace"

    def where(self):
        """'veth0 in network namespace ns1'."""
        return "%s in %s" % (self.interface, self.namespace())

    def describe(self):
        if self.kind == "cilium_custom":
            return "Cilium custom-call slot %s of endpoint %s" % (self.custom_hook, self.endpoint)
        if self.kind == "xdp":
            return "xdp on %s" % self.where()
        return "tc %s on %s" % (self.direction, self.where())

    def __repr__(self):
        return "AttachPoint(%s)" % self.describe()


# ---------------------------------------------------------------------------
# public API


def attach(ap, prog_fd, pin_path, position=None):
    """First attachment of a dispatcher program at ``ap``; returns the record.

    ``pin_path`` is where the tcx/xdp link is pinned (the pin keeps the
    attachment alive after this process exits); unused by clsact and Cilium.
    ``position`` places ours among programs already there:
      tcx:    {'anchor': 'first'|'last'|'before'|'after', 'prog_id': N}, default last
      clsact: {'priority': N} or the same anchors, mapped to tc priorities;
              default last (one past the highest priority in use, 1 on an empty hook)
    """
    _need_pyroute2(ap)
    prog = libbpf.prog_info(prog_fd)
    if ap.kind == "cilium_custom":
        return _cilium_attach(ap, prog_fd, prog)
    if ap.kind == "xdp":
        return _xdp_attach(ap, prog_fd, prog, pin_path)
    backend = ap.backend
    if backend == "auto":
        has_tcx = _probe_tcx()
        if has_tcx is None:
            # No probe: try tcx; a kernel without it refuses the attach type with EINVAL.
            try:
                return _tcx_attach(ap, prog_fd, prog, pin_path, position)
            except _TcxUnsupported:
                return _clsact_attach(ap, prog_fd, prog, position)
        backend = "tcx" if has_tcx else "clsact"
    if backend == "tcx":
        try:
            return _tcx_attach(ap, prog_fd, prog, pin_path, position)
        except _TcxUnsupported as exc:
            raise AttachError("this kernel has no tcx (needs Linux >= 6.6; %s); use the clsact backend" % exc)
    return _clsact_attach(ap, prog_fd, prog, position)


def swap(ap, record, new_prog_fd):
    """Replace the program of our attachment with ONE atomic kernel operation.

    Raises AttachDrift (and changes nothing) when the attachment is no longer
    what ``record`` says. Returns the updated record.
    """
    _need_pyroute2(ap)
    new = libbpf.prog_info(new_prog_fd)
    backend = record.get("backend")
    if backend in ("tcx", "xdp_link"):
        _link_swap(ap, record, new_prog_fd)
    elif backend == "clsact":
        _clsact_swap(ap, record, new_prog_fd, new)
    elif backend == "cilium_prog_array":
        _cilium_swap(ap, record, new_prog_fd)
    else:
        raise AttachError("unknown attachment backend %r in the record" % (backend,))
    updated = dict(record)
    updated["prog_id"] = new.id
    updated["prog_name"] = new.name
    return updated


def attached_prog_id(ap, record):
    """The program attached now through our attachment, or None when it is gone.

    Gone means: link pin missing or link defunct (interface or namespace
    deleted); filter missing or holding another program; Cilium slot empty or
    holding another program.
    """
    backend = record.get("backend")
    if backend in ("tcx", "xdp_link"):
        info = _pinned_link(record)
        return info.prog_id if info is not None else None
    if backend == "clsact":
        _need_pyroute2(ap)
        found = _clsact_current(ap, record)
        if found is None or found["prog_id"] != record.get("prog_id"):
            return None
        return found["prog_id"]
    if backend == "cilium_prog_array":
        current = _cilium_slot(record)
        return current if current == record.get("prog_id") else None
    raise AttachError("unknown attachment backend %r in the record" % (backend,))


def detach(ap, record):
    """Remove our attachment and leave the attach point as found.

    Idempotent: an attachment that is already gone is fine. Foreign programs
    (a filter someone put at our priority, a program someone put in our Cilium
    slot) are left alone. Returns True when something of ours was removed.
    """
    backend = record.get("backend")
    if backend in ("tcx", "xdp_link"):
        return _link_detach(record)
    if backend == "clsact":
        _need_pyroute2(ap)
        return _clsact_detach(ap, record)
    if backend == "cilium_prog_array":
        return _cilium_detach(record)
    raise AttachError("unknown attachment backend %r in the record" % (backend,))


def find_attachment(ap, prog_id):
    """The attachment record of program ``prog_id`` if it is installed at ``ap``
    without a record: a run that died right after its first attach and before
    saving leaves a clsact filter or a Cilium slot holding its program, which
    the caller knows (write-ahead) to be ours. None when it is not there, and
    always for tcx and XDP, whose links are found by their pins instead.

    Of a clsact qdisc we cannot tell whether that run created it, so the record
    says it did not: removal then leaves the qdisc in place.
    """
    if ap.kind == "cilium_custom":
        record = _cilium_record(ap, prog_id, None)
        return record if _cilium_slot(record) == prog_id else None
    if ap.kind == "xdp" or ap.backend == "tcx" or (ap.backend == "auto" and _probe_tcx() is not False):
        return None
    _need_pyroute2(ap)
    if _netns_gone(ap):
        return None
    parent = _clsact_parent(ap)
    with in_netns(ap):
        with IPRoute() as ipr:
            ifindex = _ifindex(ipr, ap, required=False)
            if ifindex is None or _clsact_qdisc(ipr, ifindex) != "clsact":
                return None
            for f in _tc_filters(ipr, ifindex, parent):
                if f["kind"] == "bpf" and f["prog_id"] == prog_id:
                    return {"kind": ap.kind, "backend": "clsact", "interface": ap.interface, "netns": ap.netns,
                            "ifindex": ifindex, "parent": parent, "priority": f["prio"], "handle": f["handle"],
                            "protocol": ETH_P_ALL, "created_qdisc": False, "prog_id": prog_id,
                            "prog_name": f["name"]}
    return None


def owner_conflicts(ap, record=None):
    """A description of a foreign program at ``ap``, or None.

    xdp: a program on the interface that is not our attachment's.
    cilium_custom: a program in the slot that is not ours.
    tc: None (tcx and clsact share the hook with others by design).
    """
    if ap.kind == "xdp":
        _need_pyroute2(ap)
        with in_netns(ap):
            with IPRoute() as ipr:
                ifindex = _ifindex(ipr, ap)
                attached = _xdp_attached(ipr, ifindex)
        ours = record.get("prog_id") if record else None
        for prog_id, mode in attached:
            if prog_id != ours:
                return "XDP program %s is already attached to %s (%s)" % (
                    _prog_label(prog_id), ap.where(), mode)
        return None
    if ap.kind == "cilium_custom":
        current = _cilium_slot({"map_path": ap.cilium_map_path, "key": ap.cilium_key})
        if current is not None and current != (record or {}).get("prog_id"):
            return "program %s is already in the %s" % (_prog_label(current), ap.describe())
    return None


@contextlib.contextmanager
def in_netns(ap_or_name):
    """Run the body with this thread in the attach point's network namespace.

    ifindexes, netlink sockets and bpf link targets are resolved in the
    namespace current at the time; bpffs pins are global and unaffected.
    """
    name = ap_or_name.netns if isinstance(ap_or_name, AttachPoint) else ap_or_name
    if not name:
        yield
        return
    _need_pyroute2(None)
    if not _netns_exists(name):
        raise AttachError("network namespace %s does not exist (ip netns list)" % name)
    # pushns(name) would create a missing namespace; save, then enter without O_CREAT.
    pyroute2_netns.pushns()
    try:
        pyroute2_netns.setns(name, flags=0)
    except Exception as exc:
        pyroute2_netns.popns()
        raise AttachError("cannot enter network namespace %s: %s" % (name, exc))
    try:
        yield
    finally:
        pyroute2_netns.popns()


# ---------------------------------------------------------------------------
# helpers shared by the backends


def _need_pyroute2(ap):
    global IPRoute, pyroute2_netns, NetlinkError, _ClsBpfOptions  # pylint: disable=global-statement
    if (ap is not None and ap.kind == "cilium_custom") or IPRoute is not None:
        return
    try:
        from pyroute2 import IPRoute as ip_route
        from pyroute2 import netns
        from pyroute2.netlink import nla
        from pyroute2.netlink.exceptions import NetlinkError as netlink_error
    except ImportError as exc:
        raise AttachError("the Python library pyroute2 is required on the target: %s" % exc)
    _ClsBpfOptions = _cls_bpf_options_class(nla)
    NetlinkError = netlink_error
    pyroute2_netns = netns
    IPRoute = ip_route


def _netns_exists(name):
    if os.path.isabs(name):
        return os.path.exists(name)
    return name in pyroute2_netns.listnetns()


def _netns_gone(ap):
    return bool(ap.netns) and not _netns_exists(ap.netns)


def _ifindex(ipr, ap, required=True):
    found = ipr.link_lookup(ifname=ap.interface)
    if not found:
        if not required:
            return None
        raise AttachError("interface %s not found in %s" % (ap.interface, ap.namespace()))
    return found[0]


def _prog_label(prog_id):
    """'42 (name)' for a program id, as far as the kernel still knows it."""
    try:
        fd = libbpf.prog_fd_by_id(prog_id)
    except Exception:
        return str(prog_id)
    try:
        name = libbpf.prog_info(fd).name
    except Exception:
        name = ""
    finally:
        libbpf.close_fd(fd)
    return "%s (%s)" % (prog_id, name) if name else str(prog_id)


def _probe_tcx():
    """True/False from probe.has_tcx(), or None when there is no probe to ask."""
    try:
        from ansible_collections.ebpf.datapath.plugins.module_utils import probe
    except ImportError:
        return None
    has_tcx = getattr(probe, "has_tcx", None)
    return bool(has_tcx()) if has_tcx is not None else None


def _ensure_pin_dir(pin_path):
    makedirs_private(os.path.dirname(pin_path))
    if os.path.lexists(pin_path):
        raise AttachError("pin path %s already exists; a previous attachment was not cleaned up "
                          "(remove it once nothing uses it)" % pin_path)


def _pin_link(link_fd, pin_path):
    """Pin a fresh link. The caller closes its fd either way: pinned, the link
    lives on; unpinned (pinning failed), closing it detaches it again."""
    try:
        libbpf.obj_pin(link_fd, pin_path)
    except libbpf.BpfError as exc:
        raise AttachError("cannot pin the link at %s: %s" % (pin_path, exc))
    return libbpf.link_info(link_fd)


# ---------------------------------------------------------------------------
# tcx and xdp: a pinned bpf_link


def _tcx_attach(ap, prog_fd, prog, pin_path, position):
    attach_type = libbpf.BPF_TCX_EGRESS if ap.kind == "tc_egress" else libbpf.BPF_TCX_INGRESS
    anchor, relative = _tcx_anchor(position)
    _ensure_pin_dir(pin_path)
    with in_netns(ap):
        with IPRoute() as ipr:
            ifindex = _ifindex(ipr, ap)
        try:
            link_fd = _tcx_create(prog_fd, ifindex, attach_type, anchor, relative)
        except libbpf.BpfError as exc:
            # ENOENT: no such program; EINVAL: it exists but is not at this hook.
            if anchor in ("before", "after") and exc.errno in (errno.ENOENT, errno.EINVAL):
                there = _tcx_prog_ids(ifindex, attach_type)
                if relative not in there:
                    raise AttachError("tcx anchor %s program %s: no such program at tc %s on %s (programs there: %s); "
                                      "give the id of one of them in position.prog_id"
                                      % (anchor, relative, ap.direction, ap.where(),
                                         ", ".join(str(i) for i in there) or "none"))
            if exc.errno == errno.EINVAL and _probe_tcx() is not True:
                raise _TcxUnsupported(str(exc))
            raise AttachError("cannot attach a tcx link to tc %s on %s: %s" % (ap.direction, ap.where(), exc))
    try:
        info = _pin_link(link_fd, pin_path)
    finally:
        libbpf.close_fd(link_fd)
    return {
        "kind": ap.kind, "backend": "tcx", "interface": ap.interface, "netns": ap.netns,
        "ifindex": ifindex, "attach_type": "tcx_" + ap.direction, "link_id": info.id,
        "link_pin": pin_path, "prog_id": prog.id, "prog_name": prog.name,
    }


def _tcx_anchor(position):
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
    try:
        return libbpf.prog_query(ifindex, attach_type).prog_ids
    except libbpf.BpfError:
        return []


def _tcx_create(prog_fd, ifindex, attach_type, anchor, relative):
    if anchor == "first":
        return libbpf.tcx_link_create(prog_fd, ifindex, attach_type, before=0)
    if anchor == "before":
        return libbpf.tcx_link_create(prog_fd, ifindex, attach_type, before=relative, relative_id=True)
    if anchor == "after":
        return libbpf.tcx_link_create(prog_fd, ifindex, attach_type, after=relative, relative_id=True)
    return libbpf.tcx_link_create(prog_fd, ifindex, attach_type, after=0)


def _xdp_attach(ap, prog_fd, prog, pin_path):
    flags = {"auto": 0, "native": XDP_FLAGS_DRV_MODE, "generic": XDP_FLAGS_SKB_MODE}[ap.xdp_mode]
    _ensure_pin_dir(pin_path)
    with in_netns(ap):
        with IPRoute() as ipr:
            ifindex = _ifindex(ipr, ap)
            foreign = _xdp_attached(ipr, ifindex)
            if foreign:
                raise AttachConflict(_xdp_conflict_message(ap, foreign))
            try:
                link_fd = libbpf.link_create(prog_fd, ifindex, libbpf.BPF_XDP, flags)
            except libbpf.BpfError as exc:
                if exc.errno in (errno.EBUSY, errno.EEXIST):
                    # Raced with another tool between our look and our attach.
                    raise AttachConflict(_xdp_conflict_message(ap, _xdp_attached(ipr, ifindex)))
                raise AttachError("cannot attach an XDP link (%s mode) to %s: %s" % (ap.xdp_mode, ap.where(), exc))
            try:
                info = _pin_link(link_fd, pin_path)
                modes = [mode for _prog_id, mode in _xdp_attached(ipr, ifindex)]
            finally:
                libbpf.close_fd(link_fd)
    return {
        "kind": "xdp", "backend": "xdp_link", "interface": ap.interface, "netns": ap.netns,
        "ifindex": ifindex, "xdp_mode": modes[0] if modes else ap.xdp_mode, "link_id": info.id,
        "link_pin": pin_path, "prog_id": prog.id, "prog_name": prog.name,
    }


def _xdp_attached(ipr, ifindex):
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
    desc = ", ".join("%s in %s mode" % (_prog_label(pid), mode) for pid, mode in attached)
    return ("XDP program %s is already attached to %s; it is not ours and is left alone "
            "(detach it first, or put the dispatcher elsewhere)" % (desc, ap.where()))


def _pinned_link(record):
    """LinkInfo of our pinned link, or None when it is gone or defunct."""
    try:
        fd = libbpf.obj_get(record["link_pin"])
    except libbpf.BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise AttachError("cannot open the pinned link %s: %s" % (record["link_pin"], exc))
    try:
        info = libbpf.link_info(fd)
    except libbpf.BpfError:
        return None  # the pin holds something that is not a link
    finally:
        libbpf.close_fd(fd)
    # A link whose interface went away stays pinned but reports ifindex 0.
    if not info.ifindex or info.id != record.get("link_id"):
        return None
    return info


def _link_swap(ap, record, new_prog_fd):
    pin = record["link_pin"]
    info = _pinned_link(record)
    if info is None:
        raise AttachDrift("our link at %s is gone (pin %s missing or its interface was removed)"
                          % (ap.describe(), pin))
    if info.prog_id != record["prog_id"]:
        raise AttachDrift("our link at %s now runs program %s, not %s as recorded; not replacing it"
                          % (ap.describe(), _prog_label(info.prog_id), record["prog_id"]), info.prog_id)
    link_fd = libbpf.obj_get(pin)
    try:
        old_fd = libbpf.prog_fd_by_id(record["prog_id"])
        try:
            # Compare-and-swap in the kernel: EPERM if the link's program changed meanwhile.
            libbpf.link_update(link_fd, new_prog_fd, old_prog_fd=old_fd)
        except libbpf.BpfError as exc:
            if exc.errno == errno.EPERM:
                raise AttachDrift("our link at %s changed program while swapping; not replacing it"
                                  % ap.describe())
            raise AttachError("cannot swap the program of the link at %s: %s" % (ap.describe(), exc))
        finally:
            libbpf.close_fd(old_fd)
    finally:
        libbpf.close_fd(link_fd)


def _link_detach(record):
    pin = record["link_pin"]
    try:
        fd = libbpf.obj_get(pin)
    except libbpf.BpfError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise AttachError("cannot open the pinned link %s: %s" % (pin, exc))
    removed = False
    try:
        try:
            info = libbpf.link_info(fd)
        except libbpf.BpfError:
            info = None  # not a link: just drop the pin below
        # Only the link we made: a pin path is ours, but a link someone re-pinned there is not.
        if info is not None and info.ifindex and info.id == record.get("link_id"):
            try:
                # Detach even if someone else still holds a reference to the link.
                libbpf.link_detach(fd)
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


# ---------------------------------------------------------------------------
# clsact + cls_bpf


def _cls_bpf_options_class(nla):
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


def _clsact_parent(ap):
    return TC_H_CLSACT_EGRESS if ap.kind == "tc_egress" else TC_H_CLSACT_INGRESS


def _tc_filters(ipr, ifindex, parent):
    """[{prio, handle, kind, prog_id, name}] of the filters under one clsact hook."""
    found = []
    for msg in ipr.get_filters(index=ifindex, parent=parent):
        if msg["parent"] != parent:
            continue
        entry = {"prio": msg["info"] >> 16, "handle": msg["handle"], "kind": msg.get_attr("TCA_KIND"),
                 "prog_id": None, "name": None}
        opts = msg.get_attr("TCA_OPTIONS")
        if msg["handle"] == 0:
            # The per-priority head entry of a dump; the filters follow it.
            entry["head"] = True
        elif entry["kind"] == "bpf" and opts is not None:
            full = _ClsBpfOptions(data=opts.data, offset=opts.offset, length=opts.length)
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
    if f["kind"] == "bpf":
        return "bpf filter %r (program %s)" % (f["name"], f["prog_id"])
    return "%s filter" % f["kind"]


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


def _clsact_attach(ap, prog_fd, prog, position):
    parent = _clsact_parent(ap)
    with in_netns(ap):
        with IPRoute() as ipr:
            ifindex = _ifindex(ipr, ap)
            qdisc = _clsact_qdisc(ipr, ifindex)
            created = False
            if qdisc is None:
                try:
                    ipr.tc("add", "clsact", ifindex)
                    created = True
                except NetlinkError as exc:
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
                    what = _filter_label(real[0]) if real else "a %s filter" % taken[0]["kind"]
                    raise AttachConflict("tc %s priority %d on %s is taken by %s, which is not ours; "
                                         "choose another position.priority" % (ap.direction, prio, ap.where(), what))
                try:
                    ipr.tc("add-filter", "bpf", ifindex, handle=TC_FILTER_HANDLE, parent=parent, prio=prio,
                           protocol=ETH_P_ALL, fd=prog_fd, name=prog.name or "dispatcher", direct_action=True)
                except NetlinkError as exc:
                    raise AttachError("cannot add the cls_bpf filter at tc %s priority %d on %s: %s"
                                      % (ap.direction, prio, ap.where(), exc))
            except Exception:
                if created:
                    _delete_clsact(ipr, ifindex)
                raise
    return {
        "kind": ap.kind, "backend": "clsact", "interface": ap.interface, "netns": ap.netns,
        "ifindex": ifindex, "parent": parent, "priority": prio, "handle": TC_FILTER_HANDLE,
        "protocol": ETH_P_ALL, "created_qdisc": created, "prog_id": prog.id, "prog_name": prog.name,
    }


def _clsact_current(ap, record):
    """Our filter's entry, or None when the namespace, interface or filter is gone."""
    if _netns_gone(ap):
        return None
    with in_netns(ap):
        with IPRoute() as ipr:
            ifindex = _ifindex(ipr, ap, required=False)
            if ifindex is None or ifindex != record["ifindex"]:
                return None  # the interface went away (maybe came back): our filter with it
            for f in _tc_filters(ipr, ifindex, record["parent"]):
                if f["prio"] == record["priority"] and f["handle"] == record["handle"]:
                    return f
    return None


def _clsact_swap(ap, record, new_prog_fd, new):
    current = _clsact_current(ap, record)
    if current is None:
        raise AttachDrift("our cls_bpf filter at tc %s priority %d on %s is gone"
                          % (ap.direction, record["priority"], ap.where()))
    if current["kind"] != "bpf" or current["prog_id"] != record["prog_id"]:
        raise AttachDrift("the filter at tc %s priority %d on %s is now %s, not ours (program %s); "
                          "not replacing it" % (ap.direction, record["priority"], ap.where(),
                                                _filter_label(current), record["prog_id"]),
                          current["prog_id"])
    with in_netns(ap):
        with IPRoute() as ipr:
            try:
                # "change" = replace in place, never create: cls_bpf swaps the
                # program under RCU at the same parent/priority/handle.
                ipr.tc("change-filter", "bpf", record["ifindex"], handle=record["handle"],
                       parent=record["parent"], prio=record["priority"], protocol=record.get("protocol", ETH_P_ALL),
                       fd=new_prog_fd, name=new.name or "dispatcher", direct_action=True)
            except NetlinkError as exc:
                raise AttachError("cannot replace the cls_bpf filter at tc %s priority %d on %s: %s"
                                  % (ap.direction, record["priority"], ap.where(), exc))


def _clsact_detach(ap, record):
    current = _clsact_current(ap, record)
    if _netns_gone(ap):
        return False  # the namespace took the interface, its qdisc and our filter with it
    removed = False
    with in_netns(ap):
        with IPRoute() as ipr:
            ifindex = _ifindex(ipr, ap, required=False)
            if ifindex is None or ifindex != record["ifindex"]:
                return False
            if current is not None and current["kind"] == "bpf" and current["prog_id"] == record["prog_id"]:
                try:
                    ipr.tc("del-filter", "bpf", ifindex, handle=record["handle"], parent=record["parent"],
                           prio=record["priority"], protocol=record.get("protocol", ETH_P_ALL))
                    removed = True
                except NetlinkError as exc:
                    if exc.code != errno.ENOENT:
                        raise AttachError("cannot delete our cls_bpf filter at tc %s priority %d on %s: %s"
                                          % (ap.direction, record["priority"], ap.where(), exc))
            if record.get("created_qdisc") and _clsact_qdisc(ipr, ifindex) == "clsact":
                left = _tc_filters(ipr, ifindex, TC_H_CLSACT_INGRESS) + _tc_filters(ipr, ifindex, TC_H_CLSACT_EGRESS)
                if not left:
                    _delete_clsact(ipr, ifindex)
    return removed


def _delete_clsact(ipr, ifindex):
    try:
        ipr.tc("del", "clsact", ifindex)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.EINVAL):
            raise


# ---------------------------------------------------------------------------
# Cilium custom-call prog array


def _open_cilium_map(record):
    """fd of the slot's prog array, or None when it is not pinned."""
    path = record["map_path"]
    try:
        return libbpf.obj_get(path)
    except libbpf.BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise AttachError("cannot open Cilium's custom-call map %s: %s" % (path, exc))


def _cilium_slot(record):
    """Program id in the slot, or None (empty slot, or no map)."""
    fd = _open_cilium_map(record)
    if fd is None:
        return None
    try:
        raw = libbpf.map_lookup(fd, _u32(record["key"]), 4)
    except libbpf.BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise AttachError("cannot read slot %s of %s: %s" % (record["key"], record["map_path"], exc))
    finally:
        libbpf.close_fd(fd)
    if raw is None:
        return None
    # From user space a prog array answers with the program's id.
    return int.from_bytes(raw[:4], "little") or None


def _u32(value):
    return int(value).to_bytes(4, "little")


def _cilium_record(ap, prog_id, prog_name):
    return {"kind": "cilium_custom", "backend": "cilium_prog_array", "map_path": ap.cilium_map_path,
            "endpoint": int(ap.endpoint), "custom_hook": ap.custom_hook, "key": ap.cilium_key,
            "prog_id": prog_id, "prog_name": prog_name}


def _cilium_attach(ap, prog_fd, prog):
    path = ap.cilium_map_path
    record = _cilium_record(ap, prog.id, prog.name)
    fd = _open_cilium_map(record)
    if fd is None:
        raise AttachError("Cilium is not running with custom calls for endpoint %s (no %s)" % (ap.endpoint, path))
    try:
        info = libbpf.map_info(fd)
        if info.type != libbpf.BPF_MAP_TYPE_PROG_ARRAY or ap.cilium_key >= info.max_entries:
            raise AttachError("%s is not a Cilium custom-call prog array (type %s, %s entries)"
                              % (path, info.type, info.max_entries))
        conflict = owner_conflicts(ap)
        if conflict:
            raise AttachConflict(conflict + "; it is not ours and is left alone")
        try:
            libbpf.map_update(fd, _u32(ap.cilium_key), _u32(prog_fd))
        except libbpf.BpfError as exc:
            raise AttachError("cannot put program %s into the %s: %s" % (prog.id, ap.describe(), exc))
    finally:
        libbpf.close_fd(fd)
    return record


def _cilium_swap(ap, record, new_prog_fd):
    current = _cilium_slot(record)
    if current != record["prog_id"]:
        what = "empty" if current is None else "holds program %s" % _prog_label(current)
        raise AttachDrift("the %s is %s, not our program %s; not replacing it"
                          % (ap.describe(), what, record["prog_id"]), current)
    fd = _open_cilium_map(record)
    if fd is None:
        raise AttachDrift("Cilium's custom-call map %s is gone" % record["map_path"])
    try:
        # One element store: a tail call sees the old program or the new one.
        libbpf.map_update(fd, _u32(record["key"]), _u32(new_prog_fd))
    except libbpf.BpfError as exc:
        raise AttachError("cannot update the %s: %s" % (ap.describe(), exc))
    finally:
        libbpf.close_fd(fd)


def _cilium_detach(record):
    # Look, then delete: the kernel has no compare-and-delete for map elements;
    # the window is one syscall wide and only another writer of this slot can hit it.
    if _cilium_slot(record) != record.get("prog_id"):
        return False
    fd = _open_cilium_map(record)
    if fd is None:
        return False
    try:
        return libbpf.map_delete(fd, _u32(record["key"]))
    except libbpf.BpfError as exc:
        raise AttachError("cannot clear slot %s of %s: %s" % (record["key"], record["map_path"], exc))
    finally:
        libbpf.close_fd(fd)
