# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test lab: network namespaces joined by veth pairs, real packets between them.

Default topology (``Lab().setup()``)::

    netns a                                     netns b
    lo up                                       lo up
    veth a  10.199.X.1/24  <-- veth pair -->  veth b  10.199.X.2/24
            fd00:199:X::1/64                          fd00:199:X::2/64

Every name is ``dpt`` + a random suffix, so parallel runs never collide; the
veth pair is created inside namespace a with its peer born in namespace b, so
it never appears in the host's namespace, and removing the two namespaces
removes it. Only pyroute2 talks netlink here; ``ip netns exec`` runs ping.

Needs root. Use it as a context manager or through the ``lab`` fixture of
tests/integration/conftest.py; both remove everything even when a test fails.
"""

import contextlib
import errno
import fcntl
import os
import random
import re
import secrets
import socket
import subprocess
import time

from pyroute2 import IPRoute
from pyroute2 import netns as pr_netns
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

PREFIX = "dpt"
IFNAMSIZ = 15  # usable characters of an interface name
NETNS_DIR = "/run/netns"
SIOCGSKNS = 0x894C  # ioctl: the network namespace a socket belongs to


def remove_tree(path):
    """Unpin every file under path (bpffs or not) and remove its directories."""
    if not os.path.lexists(path):
        return
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                os.unlink(full)
            else:
                os.rmdir(full)
    os.rmdir(path)


def netns_inode(name):
    """Inode of a named network namespace (identifies it while it lives)."""
    return os.stat(os.path.join(NETNS_DIR, name)).st_ino


def current_netns_inode():
    return os.stat("/proc/thread-self/ns/net").st_ino


def netns_references(inodes):
    """Everything that still keeps one of these namespaces alive, as far as we can
    see: processes or threads in it, open namespace fds, and our own sockets."""
    inodes = set(inodes)
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        base = os.path.join("/proc", pid)
        try:
            tasks = os.listdir(os.path.join(base, "task"))
        except OSError:
            continue
        for tid in tasks:
            try:
                ino = os.stat(os.path.join(base, "task", tid, "ns", "net")).st_ino
            except OSError:
                continue
            if ino in inodes:
                found.append("task %s/%s is in netns inode %d" % (pid, tid, ino))
        try:
            fds = os.listdir(os.path.join(base, "fd"))
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(base, "fd", fd))
            except OSError:
                continue
            match = re.match(r"net:\[(\d+)\]", target)
            if match and int(match.group(1)) in inodes:
                found.append("pid %s fd %s holds netns inode %s" % (pid, fd, match.group(1)))
    for fd in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink("/proc/self/fd/" + fd).startswith("socket:"):
                continue
            ns_fd = fcntl.ioctl(int(fd), SIOCGSKNS)
        except OSError:
            continue
        try:
            ino = os.fstat(ns_fd).st_ino
        finally:
            os.close(ns_fd)
        if ino in inodes:
            found.append("our socket fd %s lives in netns inode %d" % (fd, ino))
    return found


class UdpReceiver:
    """A UDP socket bound inside a namespace; counts what arrives."""

    def __init__(self, sock):
        self.sock = sock
        self.received = []  # (payload, (src address, src port))

    def wait(self, count, timeout=2.0):
        """Receive until ``count`` datagrams in total arrived or ``timeout`` s
        passed; return how many arrived."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                break
            self.received.append((data, src[:2]))
        return len(self.received)

    def drain(self, quiet=0.2):
        """Everything that arrives until the line is quiet for ``quiet`` s."""
        while True:
            before = len(self.received)
            self.wait(before + 1, timeout=quiet)
            if len(self.received) == before:
                return len(self.received)

    def close(self):
        self.sock.close()


class Lab:
    """Network namespaces and veth pairs for one test, removed by close()."""

    def __init__(self, prefix=PREFIX):
        self.prefix = prefix
        self.tag = self._free_tag()
        self.net = random.randint(1, 254)  # the X of 10.199.X.0/24 and fd00:199:X::/64
        self.namespaces = []  # every namespace we created, in order
        self.links = []  # (ns, ifname) of every veth end we created
        self.ns_a = self.ns_b = self.if_a = self.if_b = None
        self.addr_a = self.addr_b = self.addr6_a = self.addr6_b = None
        self.prefixlen, self.prefixlen6 = 24, 64
        self._home = current_netns_inode()
        self._closed = False

    def _free_tag(self):
        existing = set(pr_netns.listnetns())
        while True:
            tag = secrets.token_hex(3)[:5]
            if not any(n.startswith(self.prefix + tag) for n in existing):
                return tag

    # -- building -------------------------------------------------------------

    def name(self, role):
        """The real name of something of this lab: ``dpt<tag><role>``."""
        name = "%s%s%s" % (self.prefix, self.tag, role)
        if len(name) > IFNAMSIZ:
            raise ValueError("lab name %r is longer than %d characters" % (name, IFNAMSIZ))
        return name

    def add_namespace(self, role):
        """Create network namespace ``dpt<tag><role>`` with lo up; return its name."""
        name = self.name(role)
        pr_netns.create(name)
        self.namespaces.append(name)
        with self.in_ns(name):
            # No duplicate address detection in the lab: every IPv6 address,
            # link-local included, is usable the moment its link is up.
            # /proc/sys/net shows the namespace of the thread that opens it.
            for scope in ("all", "default"):
                with open("/proc/sys/net/ipv6/conf/%s/accept_dad" % scope, "w") as handle:
                    handle.write("0")
            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        return name

    def add_veth(self, ns1, if1, ns2, if2):
        """A veth pair if1 (in ns1) <-> if2 (in ns2), both ends up."""
        with self.in_ns(ns1):
            with IPRoute() as ipr:
                # Peer is born in ns2: nothing ever shows up in the host's namespace.
                ipr.link("add", ifname=if1, kind="veth", peer={"ifname": if2, "net_ns_fd": ns2})
        self.links.extend([(ns1, if1), (ns2, if2)])
        for ns, ifname in ((ns1, if1), (ns2, if2)):
            with self.in_ns(ns):
                with IPRoute() as ipr:
                    ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up")

    def add_address(self, ns, ifname, address, prefixlen):
        with self.in_ns(ns):
            with IPRoute() as ipr:
                index = ipr.link_lookup(ifname=ifname)[0]
                if ":" in address:
                    # nodad: usable at once instead of tentative for a second or more.
                    ipr.addr("add", index=index, address=address, prefixlen=prefixlen, flags=IFA_F_NODAD)
                else:
                    ipr.addr("add", index=index, address=address, prefixlen=prefixlen)

    def wait_up(self, ns, ifname, timeout=5.0):
        """Wait until the interface reports operstate UP (a veth needs both ends up)."""
        deadline = time.monotonic() + timeout
        with self.in_ns(ns):
            with IPRoute() as ipr:
                while True:
                    link = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0]
                    if link.get_attr("IFLA_OPERSTATE") == "UP":
                        return
                    if time.monotonic() > deadline:
                        raise RuntimeError("%s in %s is not up after %.0f s" % (ifname, ns, timeout))
                    time.sleep(0.01)

    def setup(self):
        """Build the default topology; on any failure remove what was made."""
        try:
            self.ns_a = self.add_namespace("-a")
            self.ns_b = self.add_namespace("-b")
            self.if_a, self.if_b = self.name("a"), self.name("b")
            self.addr_a, self.addr_b = "10.199.%d.1" % self.net, "10.199.%d.2" % self.net
            self.addr6_a, self.addr6_b = "fd00:199:%d::1" % self.net, "fd00:199:%d::2" % self.net
            self._configure()
        except BaseException:
            try:
                self.close()
            except Exception:  # noqa: BLE001 - the setup error is the one to report
                pass
            raise
        return self

    def _configure(self):
        self.add_veth(self.ns_a, self.if_a, self.ns_b, self.if_b)
        for ns, ifname, v4, v6 in ((self.ns_a, self.if_a, self.addr_a, self.addr6_a),
                                   (self.ns_b, self.if_b, self.addr_b, self.addr6_b)):
            self.add_address(ns, ifname, v4, self.prefixlen)
            self.add_address(ns, ifname, v6, self.prefixlen6)
        self.wait_up(self.ns_a, self.if_a)
        self.wait_up(self.ns_b, self.if_b)

    # -- using ----------------------------------------------------------------

    @contextlib.contextmanager
    def in_ns(self, name):
        """Run the body with this thread in network namespace ``name``; sockets
        made inside stay in that namespace after the body."""
        if name not in pr_netns.listnetns():
            # pushns(name) would create it (and leak it); refuse instead.
            raise RuntimeError("network namespace %s does not exist" % name)
        pr_netns.pushns()
        try:
            pr_netns.setns(name, flags=0)
        except BaseException:
            pr_netns.popns()
            raise
        try:
            yield
        finally:
            pr_netns.popns()

    def ifindex(self, ns, ifname):
        with self.in_ns(ns):
            with IPRoute() as ipr:
                found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise LookupError("no interface %s in network namespace %s" % (ifname, ns))
        return found[0]

    def addresses(self, ns):
        """{ifname: sorted ['addr/prefixlen', ...]} as the kernel has them in ``ns``."""
        out = {}
        with self.in_ns(ns):
            with IPRoute() as ipr:
                names = dict((link["index"], link.get_attr("IFLA_IFNAME")) for link in ipr.get_links())
                for addr in ipr.get_addr():
                    ifname = names.get(addr["index"])
                    out.setdefault(ifname, []).append("%s/%d" % (addr.get_attr("IFA_ADDRESS"), addr["prefixlen"]))
        return dict((k, sorted(v)) for k, v in out.items())

    def peer_of(self, ns):
        """(namespace, interface, v4, v6) at the other end of the default pair."""
        if ns == self.ns_a:
            return self.ns_b, self.if_b, self.addr_b, self.addr6_b
        return self.ns_a, self.if_a, self.addr_a, self.addr6_a

    @staticmethod
    def _family(addr):
        return socket.AF_INET6 if ":" in addr else socket.AF_INET

    def send_udp(self, from_ns, to_addr, port, count=1, payload_size=64, src_port=0):
        """Send ``count`` UDP datagrams of ``payload_size`` bytes from a socket
        made inside ``from_ns``; return how many the kernel accepted."""
        family = self._family(to_addr)
        with self.in_ns(from_ns):
            sock = socket.socket(family, socket.SOCK_DGRAM)
        sent = 0
        try:
            if src_port:
                sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", src_port))
            for seq in range(count):
                head = b"dpt%06d" % seq
                payload = (head + b"." * max(0, payload_size - len(head)))[:payload_size]
                sock.sendto(payload, (to_addr, port))
                sent += 1
        finally:
            sock.close()
        return sent

    @contextlib.contextmanager
    def recv_udp(self, ns, port, family=socket.AF_INET, addr=None):
        """A UdpReceiver bound to ``port`` (on ``addr`` or any) inside ``ns``."""
        if addr:
            family = self._family(addr)
        with self.in_ns(ns):
            sock = socket.socket(family, socket.SOCK_DGRAM)
        receiver = UdpReceiver(sock)
        try:
            sock.bind((addr or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
            yield receiver
        finally:
            receiver.close()

    def transfer_udp(self, from_ns, to_ns, to_addr, port, count=1, payload_size=64, timeout=2.0):
        """Send ``count`` datagrams and return how many arrived in ``to_ns``."""
        with self.recv_udp(to_ns, port, addr=to_addr) as receiver:
            self.send_udp(from_ns, to_addr, port, count, payload_size)
            return receiver.wait(count, timeout)

    def run(self, ns, *argv, **kwargs):
        """Run argv inside ``ns`` (``ip netns exec``, no shell); return the CompletedProcess."""
        kwargs.setdefault("timeout", 60)
        check = kwargs.pop("check", True)
        return subprocess.run(["ip", "netns", "exec", ns] + [str(a) for a in argv],
                              capture_output=True, text=True, check=check, **kwargs)

    def quiet(self):
        """No packets but the test's own: IPv6 off (no neighbour discovery, MLD or
        router solicitations) and permanent ARP entries both ways (no ARP).
        For tests that read several counters one after another and compare them."""
        for ns in (self.ns_a, self.ns_b):
            self.run(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
            self.run(ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1")
        self.pin_neighbour(self.ns_a, self.addr_b)
        self.pin_neighbour(self.ns_b, self.addr_a)

    def mac(self, ns, ifname):
        """The link-layer address of ifname in ns."""
        with self.in_ns(ns):
            with IPRoute() as ipr:
                return ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0].get_attr("IFLA_ADDRESS")

    def pin_neighbour(self, ns, addr):
        """A permanent neighbour entry in ns for addr (an address of the peer end),
        so no ARP or neighbour discovery is ever sent for it."""
        ifname, peer_ns, peer_if = ((self.if_a, self.ns_b, self.if_b) if ns == self.ns_a
                                    else (self.if_b, self.ns_a, self.if_a))
        subprocess.run(["ip", "-n", ns, "neigh", "replace", addr, "lladdr", self.mac(peer_ns, peer_if),
                        "dev", ifname, "nud", "permanent"], capture_output=True, text=True, check=True, timeout=30)

    def ping(self, from_ns, addr, count=3):
        """Ping ``addr`` from ``from_ns``; return the number of replies received."""
        proc = self.run(from_ns, "ping", "-c", count, "-i", "0.01", "-W", "1", addr,
                        check=False, timeout=10 + count)
        match = re.search(r"(\d+) (?:packets )?received", proc.stdout)
        if match is None:
            raise RuntimeError("ping printed no summary (rc %d): %s %s" % (proc.returncode, proc.stdout, proc.stderr))
        return int(match.group(1))

    # -- teardown -------------------------------------------------------------

    def leftovers(self):
        """Names of this lab that still exist: namespaces, and veths in the host's namespace."""
        left = [n for n in pr_netns.listnetns() if n.startswith(self.prefix + self.tag)]
        with IPRoute() as ipr:
            for link in ipr.get_links():
                name = link.get_attr("IFLA_IFNAME") or ""
                if name.startswith(self.prefix + self.tag):
                    left.append(name)
        return left

    def close(self):
        """Remove every namespace (and with it every veth) of this lab. Idempotent."""
        if self._closed:
            return
        self._closed = True
        errors = []
        for name in reversed(self.namespaces):
            try:
                pr_netns.remove(name)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    errors.append("%s: %s" % (name, exc))
        left = self.leftovers()
        if current_netns_inode() != self._home:
            errors.append("the test left this thread in another network namespace")
        if errors or left:
            raise RuntimeError("lab %s teardown incomplete: %s" % (self.tag, "; ".join(errors + left)))

    def __enter__(self):
        return self.setup()

    def __exit__(self, *exc):
        self.close()
        return False
