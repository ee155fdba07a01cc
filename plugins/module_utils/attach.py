# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attach points, and the choice of the backend that serves one.

An attach point is where a dispatcher lives (see ``AttachPoint``):

* ``tc_ingress`` / ``tc_egress`` on an interface, through one of two backends:
  ``tcx`` (a tcx bpf_link, kernel >= 6.6; attach_link.py) or ``clsact`` (a
  cls_bpf filter in direct-action mode under the clsact qdisc, for older
  kernels; attach_clsact.py);
* ``xdp`` on an interface, always through an XDP bpf_link (attach_link.py): a
  link cannot be silently replaced by another tool, and it dies with its last
  reference;
* ``cilium_custom``: a slot of Cilium's per-endpoint custom-call prog array
  (attach_cilium.py).

Every backend is an object with one interface (``Backend``): attach, swap,
running program, detach, find after a crash, conflicts. Each owns its
attachment record type (schema.TcxAttachment ...), which it alone builds.
``backend_for`` chooses the backend once: from the record when there is one,
else from the attach point. Everything that looks at an interface runs inside
the attach point's network namespace; bpffs pins are global.

The one rule of the backends: we change only what is ours. ``swap`` refuses
when the attachment drifted (``AttachDrift``), ``attach`` refuses when a
foreign program occupies the spot (``AttachConflict``), ``detach`` removes our
own objects and leaves everything else as found.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import os

from ansible_collections.ebpf.datapath.plugins.module_utils.defaults import DEFAULT_CILIUM_GLOBALS
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import (
    ATTACH_POINTS, CILIUM_CUSTOM_HOOKS, TC_BACKENDS, CiliumAttachment, ClsactAttachment, TcxAttachment, XdpAttachment)

# pyroute2 is imported on first netlink use (need_pyroute2): its package
# __init__ loads every pyroute2 module (NDB, IPDB, asyncio, http.server), about
# half of a module's start-up, and most tasks never touch netlink.
IPRoute = None
pyroute2_netns = None
ClsBpfOptions = None


class NetlinkError(Exception):
    """Replaced by pyroute2's own class when it is imported; matches nothing before."""


XDP_MODES = ("auto", "native", "generic")

# Cilium's custom-call prog array: one per endpoint, four slots.
CILIUM_CUSTOM_MAP = "cilium_calls_custom_%05d"

# tc: clsact's two hooks and "all protocols" (tests add foreign filters with them).
TC_H_CLSACT_INGRESS = 0xFFFFFFF2
TC_H_CLSACT_EGRESS = 0xFFFFFFF3
ETH_P_ALL = 0x0003


class AttachError(DatapathError):
    """The attach point cannot be used as asked; the message says what to fix."""


class AttachConflict(AttachError):
    """Something that is not ours occupies the attach point."""


class AttachDrift(AttachError):
    """Our attachment is no longer what we recorded; nothing was changed.

    ``current_prog_id`` is the program there now (None when the attachment is gone).
    """

    def __init__(self, message, current_prog_id=None):
        super(AttachDrift, self).__init__(message)
        self.current_prog_id = current_prog_id


class AttachPoint:
    """Where a dispatcher lives.

    attach          tc_ingress | tc_egress | xdp | cilium_custom
    interface       the interface name (tc and xdp)
    netns           a network namespace name (``ip netns``) or a path to one; None = ours
    backend         tc only: auto | tcx | clsact (auto = tcx when the kernel has it)
    xdp_mode        xdp only: auto (the kernel picks native when the driver has it,
                    else generic) | native | generic
    endpoint        cilium_custom: the Cilium endpoint id
    custom_hook     cilium_custom: ipv4_ingress | ipv4_egress | ipv6_ingress | ipv6_egress
    cilium_globals  cilium_custom: Cilium's bpffs globals directory
    """

    def __init__(self, attach, interface=None, netns=None, backend=None, xdp_mode=None,
                 endpoint=None, custom_hook=None, cilium_globals=None):
        if attach not in ATTACH_POINTS:
            raise AttachError("unknown attach point %r (expected one of %s)" % (attach, ", ".join(ATTACH_POINTS)))
        self.attach = attach
        self.interface = interface
        self.netns = netns or None
        self.backend = backend or "auto"
        self.xdp_mode = xdp_mode or "auto"
        self.endpoint = endpoint
        self.custom_hook = custom_hook
        self.cilium_globals = cilium_globals or DEFAULT_CILIUM_GLOBALS
        if attach == "cilium_custom":
            if endpoint is None or not 0 <= int(endpoint) <= 0xFFFF:
                raise AttachError("cilium_custom needs an endpoint id between 0 and 65535, got %r" % (endpoint,))
            if custom_hook not in CILIUM_CUSTOM_HOOKS:
                raise AttachError("cilium_custom needs custom_hook, one of %s; got %r"
                                  % (", ".join(sorted(CILIUM_CUSTOM_HOOKS)), custom_hook))
        else:
            if not interface:
                raise AttachError("attach point %s needs an interface" % attach)
            if attach.startswith("tc_") and self.backend not in TC_BACKENDS:
                raise AttachError("unknown tc backend %r (expected one of %s)" % (backend, ", ".join(TC_BACKENDS)))
            if attach == "xdp" and self.xdp_mode not in XDP_MODES:
                raise AttachError("unknown xdp mode %r (expected one of %s)" % (xdp_mode, ", ".join(XDP_MODES)))

    @classmethod
    def of(cls, request):
        """The attach point of a schema.DispatcherRequest."""
        return cls(request.attach, interface=request.interface, netns=request.netns, backend=request.tc_backend,
                   endpoint=request.endpoint, custom_hook=request.custom_hook, cilium_globals=request.cilium_globals)

    @property
    def direction(self):
        return "egress" if self.attach == "tc_egress" else "ingress"

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
        if self.attach == "cilium_custom":
            return "Cilium custom-call slot %s of endpoint %s" % (self.custom_hook, self.endpoint)
        if self.attach == "xdp":
            return "xdp on %s" % self.where()
        return "tc %s on %s" % (self.direction, self.where())

    def __repr__(self):
        return "AttachPoint(%s)" % self.describe()


# ---------------------------------------------------------------------------
# backends


class Backend:
    """The interface every attach backend implements, for one attach point.

    attach(prog_fd, pin_path, position)  first attachment; returns the record
    swap(record, prog_fd)                one atomic replace; returns the new record
    running_prog_id(record)              the program our attachment holds, or None (gone)
    detach(record)                       remove ours, leave the rest; True if something was removed
    find(prog_id)                        the record of prog_id installed here without one (a
                                         run killed after its first attach), or None
    conflicts(record)                    a foreign program occupying the spot, described, or None
    """

    RECORD = None  # the schema.Attachment subclass this backend owns

    def __init__(self, ap):
        self.ap = ap

    def find(self, prog_id):
        return None

    def conflicts(self, record=None):
        return None


def backend_for(ap, record=None):
    """The backend serving ap: the one that made record, or (no record yet)
    the one ap asks for, tc ``auto`` meaning tcx when the kernel has it. Only
    that backend's module is imported (one attach mechanism per file)."""
    if record is not None:
        kind = _RECORD_KINDS.get(type(record))
        if kind is None:
            raise AttachError("no backend for the attachment record %r" % (record,))
    elif ap.attach == "cilium_custom":
        kind = "cilium"
    elif ap.attach == "xdp":
        kind = "xdp"
    else:
        kind = ap.backend
        if kind == "auto":
            from ansible_collections.ebpf.datapath.plugins.module_utils import probe
            kind = "tcx" if probe.has_tcx() else "clsact"
    if kind in ("tcx", "xdp"):
        from ansible_collections.ebpf.datapath.plugins.module_utils import attach_link
        return attach_link.TcxLink(ap) if kind == "tcx" else attach_link.XdpLink(ap)
    if kind == "clsact":
        from ansible_collections.ebpf.datapath.plugins.module_utils import attach_clsact
        return attach_clsact.Clsact(ap)
    from ansible_collections.ebpf.datapath.plugins.module_utils import attach_cilium
    return attach_cilium.CiliumSlot(ap)


# schema's attachment records by the backend that makes them (each backend's RECORD).
_RECORD_KINDS = {TcxAttachment: "tcx", XdpAttachment: "xdp", ClsactAttachment: "clsact", CiliumAttachment: "cilium"}


# The same operations as functions of (attach point, record), for callers that
# hold no backend object.

def attach(ap, prog_fd, pin_path, position=None):
    """First attachment of a dispatcher program at ``ap``; returns the record.

    ``pin_path`` is where the tcx/xdp link is pinned (the pin keeps the
    attachment alive after this process exits); unused by clsact and Cilium.
    ``position`` places ours among programs already there:
      tcx:    {'anchor': 'first'|'last'|'before'|'after', 'prog_id': N}, default last
      clsact: {'priority': N} or the same anchors, mapped to tc priorities;
              default last (one past the highest priority in use, 1 on an empty hook)
    """
    return backend_for(ap).attach(prog_fd, pin_path, position)


def swap(ap, record, new_prog_fd):
    """Replace the program of our attachment with ONE atomic kernel operation.
    Raises AttachDrift (and changes nothing) when the attachment is no longer
    what ``record`` says. Returns the updated record."""
    return backend_for(ap, record).swap(record, new_prog_fd)


def attached_prog_id(ap, record):
    """The program attached now through our attachment, or None when it is gone.

    A tcx or XDP link is read from its pin here rather than by its backend, so
    the question every run asks does not import attach_link.py (a no-op rerun
    compiles every file it imports, see docs/architecture.md)."""
    if isinstance(record, (TcxAttachment, XdpAttachment)):
        info = pinned_link(record)
        return info.prog_id if info is not None else None
    return backend_for(ap, record).running_prog_id(record)


def detach(ap, record):
    """Remove our attachment and leave the attach point as found (idempotent)."""
    return backend_for(ap, record).detach(record)


def find_attachment(ap, prog_id):
    """The record of program ``prog_id`` installed at ``ap`` without a record, or None."""
    return backend_for(ap).find(prog_id)


def owner_conflicts(ap, record=None):
    """A description of a foreign program at ``ap``, or None."""
    return backend_for(ap, record).conflicts(record)


# ---------------------------------------------------------------------------
# helpers the backends share


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
    need_pyroute2()
    if not netns_exists(name):
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


def need_pyroute2():
    """Import pyroute2 (once), for the backends that speak netlink."""
    global IPRoute, pyroute2_netns, NetlinkError, ClsBpfOptions  # pylint: disable=global-statement
    if IPRoute is not None:
        return
    try:
        from pyroute2 import IPRoute as ip_route
        from pyroute2 import netns
        from pyroute2.netlink import nla
        from pyroute2.netlink.exceptions import NetlinkError as netlink_error
    except ImportError as exc:
        raise AttachError("the Python library pyroute2 is required on the target: %s" % exc)
    from ansible_collections.ebpf.datapath.plugins.module_utils.attach_clsact import cls_bpf_options_class
    ClsBpfOptions = cls_bpf_options_class(nla)
    NetlinkError = netlink_error
    pyroute2_netns = netns
    IPRoute = ip_route


def open_pin(path, what):
    """fd of the object pinned at path, or None when nothing is pinned there;
    any other failure is an AttachError naming what (e.g. "the pinned link")."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
    try:
        return libbpf.obj_get(path)
    except libbpf.BpfError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise AttachError("cannot open %s %s: %s" % (what, path, exc))


def netns_exists(name):
    if os.path.isabs(name):
        return os.path.exists(name)
    return name in pyroute2_netns.listnetns()


def netns_gone(ap):
    return bool(ap.netns) and not netns_exists(ap.netns)


def ifindex_of(ipr, ap, required=True):
    found = ipr.link_lookup(ifname=ap.interface)
    if not found:
        if not required:
            return None
        raise AttachError("interface %s not found in %s" % (ap.interface, ap.namespace()))
    return found[0]


def pinned_link(record):
    """LinkInfo of our pinned tcx/XDP link, or None when it is gone or defunct."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
    fd = open_pin(record.link_pin, "the pinned link")
    if fd is None:
        return None
    try:
        info = libbpf.link_info(fd)
    except libbpf.BpfError:
        return None  # the pin holds something that is not a link
    finally:
        libbpf.close_fd(fd)
    # A link whose interface went away stays pinned but reports ifindex 0.
    if not info.ifindex or info.id != record.link_id:
        return None
    return info


def prog_label(prog_id):
    """'42 (name)' for a program id, as far as the kernel still knows it."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
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
