# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dispatchers in Cilium's custom-call slots, with a stand-in for Cilium.

Cilium cannot run here, so bpf/testdata/cilium_standin.c plays its part with
Cilium's exact convention: verdict and remote identity in cb[4], a tail call
into the endpoint's prog array at the key for family and direction, its own
verdict when the slot is empty. It sits at tc ingress of the lab's receiving
end; identities are given per source address, so real UDP from three source
addresses is three identities.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned

from cilium_standin import ENDPOINT, ID_A, ID_A6, ID_EXTRA, ROOT, Cilium
from modrun import run_module

L2_L3_L4_V4 = 14 + 20 + 8
L2_L3_L4_V6 = 14 + 40 + 8


@pytest.fixture
def cilium(lab):
    stand_in = Cilium(lab, "/sys/fs/bpf/dpt-cilium-%s" % uuid.uuid4().hex[:8])
    try:
        yield stand_in
    finally:
        stand_in.close()


def send(lab, src, dst, port, count, payload):
    """count UDP datagrams of payload bytes from src (in a) to dst (in b); returns how many b received."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with lab.in_ns(lab.ns_b):
        rx = socket.socket(family, socket.SOCK_DGRAM)
    with lab.in_ns(lab.ns_a):
        tx = socket.socket(family, socket.SOCK_DGRAM)
    try:
        rx.bind((dst, port))
        rx.settimeout(0.3)
        tx.bind((src, 0))
        for _i in range(count):
            tx.sendto(b"x" * payload, (dst, port))
        got, deadline = 0, time.monotonic() + 2
        while got < count and time.monotonic() < deadline:
            try:
                rx.recv(2048)
                got += 1
            except socket.timeout:
                break
        return got
    finally:
        tx.close()
        rx.close()


def dp(bpffs_root, state_dir, module, **args):
    expect_fail = args.pop("_fail", False)
    return run_module(module, dict(args, bpffs_root=bpffs_root, state_dir=state_dir), expect_fail=expect_fail)


def slot_args(cilium, name, hook, plugins):
    return dict(name=name, attach="cilium_custom", endpoint=ENDPOINT, custom_hook=hook,
                cilium_globals=cilium.globals_dir, mode="link", plugins=plugins)


def test_bytecount_per_identity_in_ipv4_and_ipv6_slots(lab, cilium, bpffs_root, state_dir):
    dp(bpffs_root, state_dir, "datapath_plugin", name="bytecount", src=os.path.join(ROOT, "bpf", "examples", "bytecount.c"))
    post = [{"plugin": "bytecount", "function": "bytecount", "hook": "post"}]
    for name, hook in (("ep42-v4-in", "ipv4_ingress"), ("ep42-v6-in", "ipv6_ingress")):
        res = dp(bpffs_root, state_dir, "dispatcher", **slot_args(cilium, name, hook, post))
        assert res["changed"] is True
    assert cilium.slot(0) is not None and cilium.slot(2) is not None
    cilium.drop(ID_EXTRA)

    assert send(lab, lab.addr_a, lab.addr_b, 9000, 5, 100) == 5
    assert send(lab, cilium.extra, lab.addr_b, 9001, 3, 200) == 0, "Cilium's drop verdict must stay a drop"
    assert send(lab, lab.addr6_a, lab.addr6_b, 9002, 4, 50) == 4
    counted = read_pinned(os.path.join(bpffs_root, "plugins", "bytecount", "maps", "bytecount_map"))
    assert counted.get(ID_A) == 5 * (L2_L3_L4_V4 + 100)
    assert counted.get(ID_EXTRA) == 3 * (L2_L3_L4_V4 + 200), "the post hook counts dropped packets too"
    assert counted.get(ID_A6) == 4 * (L2_L3_L4_V6 + 50)

    for name, hook in (("ep42-v4-in", "ipv4_ingress"), ("ep42-v6-in", "ipv6_ingress")):
        assert dp(bpffs_root, state_dir, "dispatcher", **slot_args(cilium, name, hook, post))["changed"] is False

    for name in ("ep42-v4-in", "ep42-v6-in"):
        assert dp(bpffs_root, state_dir, "dispatcher", name=name, state="absent")["changed"] is True
    assert cilium.slot(0) is None and cilium.slot(2) is None
    before = read_pinned(os.path.join(bpffs_root, "plugins", "bytecount", "maps", "bytecount_map"))
    assert send(lab, lab.addr_a, lab.addr_b, 9000, 2, 100) == 2, "the stand-in's own path keeps working"
    assert send(lab, cilium.extra, lab.addr_b, 9001, 2, 200) == 0
    assert read_pinned(os.path.join(bpffs_root, "plugins", "bytecount", "maps", "bytecount_map")) == before


def test_ordered_chain_in_one_slot(lab, cilium, bpffs_root, state_dir):
    testdata = os.path.join(ROOT, "bpf", "testdata")
    for name, src in (("counter", "counter.c"), ("twin", "counter_twin.c"), ("dropper", "dropper.c")):
        dp(bpffs_root, state_dir, "datapath_plugin", name=name, src=os.path.join(testdata, src))
    dp(bpffs_root, state_dir, "datapath_plugin", name="bytecount", src=os.path.join(ROOT, "bpf", "examples", "bytecount.c"))
    plugins = [
        {"plugin": "twin", "function": "count", "constraints": [{"order": "AFTER", "plugin": "dropper"}]},
        {"plugin": "dropper", "function": "drop_port"},
        {"plugin": "counter", "function": "count", "constraints": [{"anchor": "before", "plugin": "dropper"}]},
        {"plugin": "bytecount", "function": "bytecount", "hook": "post"},
    ]
    res = dp(bpffs_root, state_dir, "dispatcher", **slot_args(cilium, "ep42-chain", "ipv4_ingress", plugins))
    assert [p for p, _function in res["chain"]["pre"]] == ["counter", "dropper", "twin"]
    assert send(lab, lab.addr_a, lab.addr_b, 7777, 10, 64) == 0
    assert send(lab, lab.addr_a, lab.addr_b, 8888, 5, 64) == 5
    counts = dict((n, read_pinned(os.path.join(bpffs_root, "plugins", n, "maps", m)).get(0, 0))
                  for n, m in (("counter", "counts"), ("twin", "counts"), ("dropper", "dropped")))
    assert counts["dropper"] == 10 and counts["counter"] - counts["twin"] == 10
    counted = read_pinned(os.path.join(bpffs_root, "plugins", "bytecount", "maps", "bytecount_map"))
    assert counted.get(ID_A) == 5 * (L2_L3_L4_V4 + 64), "a pre drop ends the chain: post hooks see only what passed"
    dp(bpffs_root, state_dir, "dispatcher", name="ep42-chain", state="absent")
    assert cilium.slot(0) is None


def test_missing_prog_array_is_a_clear_error(lab, bpffs_root, state_dir, tmp_path):
    dp(bpffs_root, state_dir, "datapath_plugin", name="bytecount", src=os.path.join(ROOT, "bpf", "examples", "bytecount.c"))
    res = dp(bpffs_root, state_dir, "dispatcher", _fail=True, name="ep7", attach="cilium_custom", endpoint=7,
             custom_hook="ipv4_egress", cilium_globals=str(tmp_path), plugins=[
                 {"plugin": "bytecount", "function": "bytecount", "hook": "post"}])
    assert "Cilium is not running with custom calls for endpoint 7" in res["msg"]
    assert not os.path.exists(os.path.join(bpffs_root, "dispatchers"))


def run_role(tmp_path, cilium, bpffs_root, state_dir, state):
    """Apply roles/bytecount with ansible-playbook to both IPv4 and IPv6 ingress slots."""
    play = tmp_path / ("bytecount-%s.yml" % state)
    points = [{"name": "ep42-v4-in", "attach": "cilium_custom", "endpoint": ENDPOINT, "custom_hook": "ipv4_ingress",
               "cilium_globals": cilium.globals_dir},
              {"name": "ep42-v6-in", "attach": "cilium_custom", "endpoint": ENDPOINT, "custom_hook": "ipv6_ingress",
               "cilium_globals": cilium.globals_dir}]
    play.write_text(json.dumps([{
        "name": "bytecount role at a Cilium stand-in", "hosts": "localhost", "connection": "local",
        "gather_facts": False, "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "roles": [{"role": "ebpf.datapath.bytecount", "vars": {
            "bytecount_state": state, "bytecount_install_deps": False, "bytecount_mode": "link",
            "bytecount_bpffs_root": bpffs_root, "bytecount_state_dir": state_dir,
            "bytecount_object_dir": str(tmp_path / "objects"), "bytecount_controller_dir": str(tmp_path / "build"),
            "bytecount_attach_points": points}}],
    }]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(play)],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    recap = re.search(r"^localhost\s+:\s+(.*)$", proc.stdout, re.M).group(1)
    return dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", recap))


def test_bytecount_role_in_both_ingress_slots(lab, cilium, bpffs_root, state_dir, tmp_path):
    """The role, as users run it: per-identity bytes exact, rerun unchanged, absent empties the slots."""
    first = run_role(tmp_path, cilium, bpffs_root, state_dir, "present")
    assert first["changed"] > 0
    cilium.drop(ID_EXTRA)
    assert send(lab, lab.addr_a, lab.addr_b, 9100, 6, 300) == 6
    assert send(lab, cilium.extra, lab.addr_b, 9101, 2, 10) == 0, "Cilium's drop verdict must stay a drop"
    assert send(lab, lab.addr6_a, lab.addr6_b, 9102, 3, 70) == 3
    counted = read_pinned(os.path.join(bpffs_root, "plugins", "bytecount", "maps", "bytecount_map"))
    assert counted.get(ID_A) == 6 * (L2_L3_L4_V4 + 300)
    assert counted.get(ID_EXTRA) == 2 * (L2_L3_L4_V4 + 10)
    assert counted.get(ID_A6) == 3 * (L2_L3_L4_V6 + 70)
    assert run_role(tmp_path, cilium, bpffs_root, state_dir, "present")["changed"] == 0, "a rerun changes nothing"
    run_role(tmp_path, cilium, bpffs_root, state_dir, "absent")
    assert cilium.slot(0) is None and cilium.slot(2) is None
    assert send(lab, lab.addr_a, lab.addr_b, 9100, 2, 300) == 2, "the stand-in's own path keeps working"
    assert not os.path.exists(os.path.join(bpffs_root, "plugins"))
