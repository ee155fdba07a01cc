# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab itself: real traffic both ways on IPv4 and IPv6, and nothing left
behind after teardown -- also when the test fails. Needs root."""

import os
import socket
import subprocess
import sys
import textwrap

import pytest
from pyroute2 import IPRoute
from pyroute2 import netns as pr_netns

from lab import IFNAMSIZ, Lab, current_netns_inode, netns_inode, netns_references

HERE = os.path.dirname(os.path.abspath(__file__))


def host_state():
    """Namespaces, veths and lab-named links as the host sees them, through iproute2
    (independent of pyroute2, which the lab uses)."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    veths = subprocess.run(["ip", "-o", "link", "show", "type", "veth"],
                           capture_output=True, text=True, check=True).stdout
    return netns + veths


def assert_gone(names, inodes):
    """None of these names exists anywhere we can look, and nothing keeps the
    namespaces (and so their veths) alive."""
    state = host_state()
    for name in names:
        assert name not in state, "%s still exists:\n%s" % (name, state)
        assert not os.path.lexists(os.path.join("/run/netns", name))
    with IPRoute() as ipr:
        host_links = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    assert not set(names) & set(host_links)
    assert netns_references(inodes) == []


def lab_names(lab):
    return [lab.ns_a, lab.ns_b, lab.if_a, lab.if_b]


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_udp_flows_both_ways(lab, family):
    v6 = family == "ipv6"
    for src_ns in (lab.ns_a, lab.ns_b):
        dst_ns, _dst_if, dst4, dst6 = lab.peer_of(src_ns)
        _src_ns, _src_if, src4, src6 = lab.peer_of(dst_ns)
        dst, src = (dst6, src6) if v6 else (dst4, src4)
        with lab.recv_udp(dst_ns, 9000, addr=dst) as rx:
            assert lab.send_udp(src_ns, dst, 9000, count=25, payload_size=300) == 25
            assert rx.wait(25) == 25
        assert all(len(payload) == 300 for payload, _sender in rx.received)
        assert {addr for _payload, (addr, _port) in rx.received} == {src}
        assert sorted(p[:9] for p, _sender in rx.received) == [b"dpt%06d" % i for i in range(25)]


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_ping_both_ways(lab, family):
    if family == "ipv4":
        assert lab.ping(lab.ns_a, lab.addr_b, count=5) == 5
        assert lab.ping(lab.ns_b, lab.addr_a, count=5) == 5
    else:
        assert lab.ping(lab.ns_a, lab.addr6_b, count=5) == 5
        assert lab.ping(lab.ns_b, lab.addr6_a, count=5) == 5


def test_nothing_flows_to_an_address_nobody_has(lab):
    """The counts above are real: an absent address gets nothing."""
    assert lab.ping(lab.ns_a, "10.199.%d.77" % lab.net, count=2) == 0
    assert lab.transfer_udp(lab.ns_a, lab.ns_b, lab.addr_b, 9001, count=3) == 3
    with lab.recv_udp(lab.ns_b, 9002, addr=lab.addr_b) as rx:
        lab.send_udp(lab.ns_a, lab.addr_b, 9003, count=3)  # another port
        assert rx.wait(3, timeout=0.5) == 0


def test_addresses_and_links_are_as_documented(lab):
    on_a = lab.addresses(lab.ns_a)[lab.if_a]
    assert [a for a in on_a if not a.startswith("fe80:")] == ["10.199.%d.1/24" % lab.net,
                                                              "fd00:199:%d::1/64" % lab.net]
    assert "10.199.%d.2/24" % lab.net in lab.addresses(lab.ns_b)[lab.if_b]
    assert "fd00:199:%d::2/64" % lab.net in lab.addresses(lab.ns_b)[lab.if_b]
    assert lab.addresses(lab.ns_a)["lo"] == ["127.0.0.1/8", "::1/128"]
    # IPv6 usable at once: not tentative (iproute2 shows the nodad flag).
    out = lab.run(lab.ns_a, "ip", "-6", "addr", "show", "dev", lab.if_a).stdout
    assert "fd00:199:%d::1/64 scope global nodad" % lab.net in out
    assert "tentative" not in out, out  # DAD is off in lab namespaces, link-local included
    for name in lab_names(lab):
        assert name.startswith("dpt") and len(name) <= IFNAMSIZ
    assert lab.ns_a != lab.ns_b and lab.if_a != lab.if_b


def test_ifindex_and_in_ns(lab):
    home = current_netns_inode()
    index_a = lab.ifindex(lab.ns_a, lab.if_a)
    with lab.in_ns(lab.ns_a):
        assert current_netns_inode() == netns_inode(lab.ns_a)
        assert socket.if_nametoindex(lab.if_a) == index_a
        with lab.in_ns(lab.ns_b):  # nests
            assert socket.if_nametoindex(lab.if_b) == lab.ifindex(lab.ns_b, lab.if_b)
        assert current_netns_inode() == netns_inode(lab.ns_a)
    assert current_netns_inode() == home
    with pytest.raises(OSError):
        socket.if_nametoindex(lab.if_a)  # the veth is not in the host's namespace
    with pytest.raises(LookupError):
        lab.ifindex(lab.ns_a, "nosuch0")


def test_in_ns_refuses_an_unknown_namespace_without_creating_it(lab):
    ghost = lab.name("-zz")
    with pytest.raises(RuntimeError):
        with lab.in_ns(ghost):
            pass
    assert ghost not in pr_netns.listnetns()


def test_two_labs_at_once_do_not_collide(lab):
    with Lab() as other:
        assert set(lab_names(lab)).isdisjoint(lab_names(other))
        assert other.ping(other.ns_a, other.addr_b, count=2) == 2
        assert lab.ping(lab.ns_a, lab.addr_b, count=2) == 2
    assert other.leftovers() == []
    assert sorted(lab.leftovers()) == sorted([lab.ns_a, lab.ns_b])


def test_teardown_removes_namespaces_and_veths():
    lab = Lab().setup()
    names = lab_names(lab)
    inodes = [netns_inode(lab.ns_a), netns_inode(lab.ns_b)]
    assert lab.transfer_udp(lab.ns_a, lab.ns_b, lab.addr6_b, 9100, count=3) == 3
    assert all(name in host_state() for name in (lab.ns_a, lab.ns_b))
    lab.close()
    assert_gone(names, inodes)
    lab.close()  # idempotent


def test_exception_inside_the_lab_still_cleans_up():
    home = current_netns_inode()
    seen = {}
    with pytest.raises(ZeroDivisionError):
        with Lab() as lab:
            seen["names"] = lab_names(lab)
            seen["inodes"] = [netns_inode(lab.ns_a), netns_inode(lab.ns_b)]
            with lab.in_ns(lab.ns_b):
                with lab.recv_udp(lab.ns_b, 9200):
                    1 / 0
    assert current_netns_inode() == home
    assert_gone(seen["names"], seen["inodes"])


def test_failed_setup_removes_what_it_made():
    class BrokenLab(Lab):
        def _configure(self):
            super(BrokenLab, self)._configure()
            raise RuntimeError("injected failure after the veth pair was made")

    broken = BrokenLab()
    with pytest.raises(RuntimeError, match="injected"):
        broken.setup()
    assert len(broken.namespaces) == 2
    assert_gone(lab_names(broken), [])
    assert broken.leftovers() == []


def test_the_fixtures_clean_up_after_a_failing_test(tmp_path):
    """Run a failing test that uses lab and bpffs_root in a child pytest, then
    look for what it made."""
    record = tmp_path / "made.txt"
    test_file = tmp_path / "test_fails.py"
    test_file.write_text(textwrap.dedent("""\
        import os
        import subprocess

        def test_fails(lab, bpffs_root, state_dir):
            os.makedirs(os.path.join(bpffs_root, "plugins", "x", "maps"))
            pin = os.path.join(bpffs_root, "plugins", "x", "maps", "counts")
            subprocess.run(["bpftool", "map", "create", pin, "type", "array", "key", "4", "value", "8",
                            "entries", "4", "name", "counts"], check=True)
            assert os.path.exists(pin)
            with open({record!r}, "w") as handle:
                handle.write(" ".join([lab.ns_a, lab.ns_b, lab.if_a, lab.if_b, bpffs_root]))
            assert lab.ping(lab.ns_a, lab.addr_b, count=1) == 1
            raise AssertionError("this test fails on purpose")
        """).format(record=str(record)))
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(test_file)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=str(tmp_path), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "this test fails on purpose" in proc.stdout
    ns_a, ns_b, if_a, if_b, bpffs_root = record.read_text().split()
    assert bpffs_root.startswith("/sys/fs/bpf/dpt-")
    assert not os.path.lexists(bpffs_root)
    assert_gone([ns_a, ns_b, if_a, if_b], [])


def test_bpffs_root_is_private_and_on_bpffs(bpffs_root, state_dir):
    assert bpffs_root.startswith("/sys/fs/bpf/dpt-") and os.path.isdir(bpffs_root)
    assert os.listdir(bpffs_root) == []
    assert os.stat(bpffs_root).st_dev == os.stat("/sys/fs/bpf").st_dev
    assert not os.path.exists(state_dir) and os.path.isdir(os.path.dirname(state_dir))
