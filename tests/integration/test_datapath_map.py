# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""datapath_map end to end: real module runs against the maps of the test plugin
bpf/testdata/maps_typed.c, pinned on this kernel. The map contents are read back
with libbpf straight from the pins (raw bytes), independent of the module."""

import os
import socket
import struct
import time

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps

from modhost import Host, place, udp_burst
from modrun import run_module

PLUGIN = "typed"


@pytest.fixture
def host(bpffs_root, state_dir):
    h = Host(None, bpffs_root, state_dir)
    h.plugin(PLUGIN, "maps_typed.c")
    return h


def pin(host, name):
    return os.path.join(host.bpffs_root, "plugins", PLUGIN, "maps", name)


def raw_map(host, name):
    """{key bytes: value bytes} of the pinned map, read entry by entry with libbpf."""
    fd = libbpf.obj_get(pin(host, name))
    try:
        info = libbpf.map_info(fd)
        size = info.value_size
        if info.type in libbpf.PERCPU_MAP_TYPES:
            size = (size + 7) // 8 * 8 * libbpf.num_possible_cpus()
        return dict((k, bpf_maps.map_lookup(fd, k, size)) for k in bpf_maps.map_keys(fd, info.key_size))
    finally:
        libbpf.close_fd(fd)


def setmap(host, mapname, entries, **args):
    return host.run("datapath_map", plugin=PLUGIN, map=mapname, entries=entries, **args)


def flow_key(addr, port, proto=17):
    return socket.inet_aton(addr) + struct.pack("<HBB", port, proto, 0)


FLOWS = [
    {"key": {"addr": "10.0.0.1", "port": 53, "proto": 17},
     "value": {"mac": "aa:bb:cc:dd:ee:01", "weight": 3, "delta": -5, "act": "ACT_DROP", "on": True,
               "tag": "616263", "addr6": "2001:db8::1"}},
    {"key": {"addr": "10.0.0.2", "port": 80, "proto": 6},
     "value": {"weight": 1, "act": 2, "tag": [1, 2, 3]}},
]


def test_check_apply_check_apply_and_diff(host):
    results = [setmap(host, "flows", FLOWS, _check=check) for check in (True, False, True, False)]
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert results[0]["added"] == 2 and results[0]["entries"] == 2
    assert raw_map(host, "flows") != {} and results[3]["added"] == 0
    diff = results[1]["diff"]["prepared"]
    assert '+ {"addr": "10.0.0.1", "pad": 0, "port": 53, "proto": 17}' in diff
    assert '"mac": "aa:bb:cc:dd:ee:01"' in diff and '"act": "ACT_DROP"' in diff and '"delta": -5' in diff
    assert results[2]["diff"]["prepared"] == ""

    # The bytes are what the C struct holds.
    stored = raw_map(host, "flows")
    value = stored[flow_key("10.0.0.1", 53)]
    assert value[:6] == bytes.fromhex("aabbccddee01")
    assert struct.unpack_from("<Hi I", value, 6) == (3, -5, 1)
    assert value[16] == 1 and value[17:20] == b"abc"
    assert value[20:36] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert stored[flow_key("10.0.0.2", 80, 6)][17:20] == b"\x01\x02\x03"

    # A change of one field is one changed entry, shown old -> new.
    changed = [dict(FLOWS[0]), FLOWS[1]]
    changed[0] = {"key": FLOWS[0]["key"], "value": dict(FLOWS[0]["value"], weight=4)}
    check = setmap(host, "flows", changed, _check=True)
    assert check["changed"] is True and check["changed_entries"] == 1 and check["added"] == 0
    assert '"weight": 3' in check["diff"]["prepared"] and '"weight": 4' in check["diff"]["prepared"]
    assert check["diff"]["prepared"].startswith("~ ")
    assert setmap(host, "flows", changed)["changed"] is True
    assert setmap(host, "flows", changed)["changed"] is False


def test_exact_absent_array_and_percpu(host):
    setmap(host, "flows", FLOWS)
    extra = [{"key": {"addr": "10.9.9.9", "port": 1}, "value": {"weight": 9}}]
    res = setmap(host, "flows", extra, exact=True, _check=True)
    assert (res["changed"], res["added"], res["removed"], res["entries"]) == (True, 1, 2, 1)
    assert len(raw_map(host, "flows")) == 2, "check mode wrote nothing"
    setmap(host, "flows", extra, exact=True)
    assert list(raw_map(host, "flows")) == [flow_key("10.9.9.9", 1, 0)]
    assert setmap(host, "flows", extra, exact=True)["changed"] is False

    res = setmap(host, "flows", [{"key": {"addr": "10.9.9.9", "port": 1}}], state="absent")
    assert res["changed"] is True and res["removed"] == 1 and raw_map(host, "flows") == {}
    assert setmap(host, "flows", [{"key": {"addr": "10.9.9.9", "port": 1}}], state="absent")["changed"] is False

    # Array of structs: enum by name, MAC, list of u16; absent writes zero.
    setting = {"limit": -1, "proto": "PROTO_UDP", "mac": "02:00:00:00:00:01", "ports": [53, 443]}
    assert setmap(host, "settings", [{"key": 1, "value": setting}])["changed"] is True
    raw = raw_map(host, "settings")[struct.pack("<I", 1)]
    assert struct.unpack_from("<qI", raw) == (-1, 17) and raw[12:18] == bytes.fromhex("020000000001")
    assert struct.unpack_from("<HH", raw, 18) == (53, 443)
    assert setmap(host, "settings", [{"key": 1, "value": setting}])["changed"] is False
    res = setmap(host, "settings", [{"key": 1}], state="absent")
    assert res["changed"] is True and res["changed_entries"] == 1
    assert raw_map(host, "settings")[struct.pack("<I", 1)] == b"\0" * 24
    assert setmap(host, "settings", [{"key": 1}], state="absent")["changed"] is False

    # Per-CPU: one value for all CPUs, then one per CPU.
    ncpu = libbpf.num_possible_cpus()
    assert setmap(host, "stats", [{"key": 1, "value": 7}])["changed"] is True
    assert raw_map(host, "stats")[struct.pack("<I", 1)] == struct.pack("<Q", 7) * ncpu
    per_cpu = list(range(100, 100 + ncpu))
    assert setmap(host, "stats", [{"key": 1, "value": per_cpu}])["changed"] is True
    assert raw_map(host, "stats")[struct.pack("<I", 1)] == b"".join(struct.pack("<Q", v) for v in per_cpu)
    assert setmap(host, "stats", [{"key": 1, "value": per_cpu}])["changed"] is False


def test_map_without_batch_ops(host):
    """An LPM trie has no batch operations: entries go one at a time."""
    nets = [{"key": {"prefixlen": 24, "addr": "10.1.2.0"}, "value": 1},
            {"key": {"prefixlen": 16, "addr": "192.168.0.0"}, "value": 2}]
    assert [setmap(host, "prefixes", nets, _check=c)["changed"] for c in (True, False, True, False)] == [
        True, True, False, False]
    assert raw_map(host, "prefixes") == {struct.pack("<I", 24) + bytes([10, 1, 2, 0]): struct.pack("<I", 1),
                                         struct.pack("<I", 16) + bytes([192, 168, 0, 0]): struct.pack("<I", 2)}
    res = setmap(host, "prefixes", nets[:1], exact=True)
    assert res["removed"] == 1 and list(raw_map(host, "prefixes")) == [struct.pack("<I", 24) + bytes([10, 1, 2, 0])]
    res = setmap(host, "prefixes", [{"key": nets[0]["key"]}], state="absent")
    assert res["removed"] == 1 and raw_map(host, "prefixes") == {}


BAD = [
    ("flows", [{"key": {"addr": "10.0.0.1", "prot": 1}, "value": {}}], "has no field 'prot'"),
    ("flows", [{"key": {"addr": "10.0.0.300"}, "value": {}}],
     'entries[1].key.addr: "10.0.0.300" is not a valid __be32 (unsigned int) (4 bytes): not an IPv4 address'),
    ("flows", [{"key": {"port": 70000}, "value": {}}], "entries[1].key.port: 70000 is not a valid __u16 (unsigned short)"),
    ("flows", [{"key": {"port": 1}, "value": {"act": "ACT_NOPE"}}], "unknown name; known: ACT_DROP"),
    ("flows", [{"key": {"port": 1}, "value": {"mac": "aa:bb"}}], "not a MAC address"),
    ("flows", [{"key": {"port": 1}, "value": {"tag": "61626364"}}], "give 3 bytes as hex text"),
    ("flows", [{"key": {"port": 1}, "value": {"addr6": "1.2.3.4"}}], "entries[1].value.addr6"),
    ("flows", [{"key": {"port": 1}, "value": {"on": 2}}], "give true or false"),
    ("flows", [{"key": {"port": 1}, "value": {"delta": "x"}}], "__s32"),
    ("flows", [{"key": {"port": 1}}], "state=present needs a 'value'"),
    ("flows", [{"key": {"port": 1}, "value": {}}, {"key": {"port": 1}, "value": {}}], "give each key once"),
    ("settings", [{"key": 4, "value": {}}], "past the end of array map"),
    ("settings", [{"key": 0, "value": {"ports": [1]}}], "give a list of 2 items"),
    ("stats", [{"key": 0, "value": [1, 2, 3] * 1000}], "one value per possible CPU"),
    ("blocked", [{"key": p, "value": True} for p in range(65)], "max_entries is 64"),
]


def test_bad_input_is_refused_and_map_untouched(host):
    setmap(host, "flows", FLOWS)
    setmap(host, "settings", [{"key": 0, "value": {"limit": 5}}])
    before = dict((m, raw_map(host, m)) for m in ("flows", "settings", "stats", "blocked"))
    # A good entry first: it must not be written when a later one is bad.
    good = {"key": {"addr": "10.7.7.7", "port": 7}, "value": {"weight": 7}}
    for mapname, entries, message in BAD:
        if mapname == "flows":
            entries = [good] + entries
        res = setmap(host, mapname, entries, _fail=True)
        assert message in res["msg"], (message, res["msg"])
        assert raw_map(host, mapname) == before[mapname], "map %s changed by a refused task" % mapname

    res = host.run("datapath_map", plugin="nope", map="flows", entries=[], _fail=True)
    assert "plugin 'nope' is not installed" in res["msg"] and "datapath_plugin" in res["msg"]
    res = host.run("datapath_map", plugin=PLUGIN, map="nope", entries=[], _fail=True)
    assert "has no map 'nope'; its maps are: blocked, flows, prefixes, settings, stats" in res["msg"]
    res = setmap(host, "flows", [], state="absent", exact=True, _fail=True)
    assert "exact: true works with state: present only" in res["msg"]
    assert dict((m, raw_map(host, m)) for m in before) == before


def test_ten_thousand_entries(host):
    entries = [{"key": {"addr": "10.%d.%d.1" % (i // 256, i % 256), "port": i, "proto": 6},
                "value": {"weight": i % 65536, "bytes": i, "act": "ACT_PASS"}} for i in range(10000)]
    start = time.monotonic()
    # As a playbook runs it without --diff: the diff text is not built.
    res = run_module("datapath_map", dict(host.common, plugin=PLUGIN, map="flows", entries=entries), diff=False)
    wall = time.monotonic() - start
    print("datapath_map 10000 entries: module time %.3f s (map work), process wall time %.3f s"
          % (res["elapsed"], wall))
    assert res["changed"] is True and res["added"] == 10000 and res["entries"] == 10000
    assert res["elapsed"] < 1.0
    stored = raw_map(host, "flows")
    assert len(stored) == 10000
    assert struct.unpack_from("<H", stored[flow_key("10.39.15.1", 9999, 6)], 6) == (9999,)
    again = setmap(host, "flows", entries)  # with --diff
    print("datapath_map 10000 entries, no change (diff mode): module time %.3f s" % again["elapsed"])
    assert again["changed"] is False and again["elapsed"] < 1.0
    assert res["diff"]["prepared"] == "" and again["diff"]["prepared"] == ""


def test_value_written_is_seen_by_the_program(lab, bpffs_root, state_dir):
    lab.quiet()
    h = Host(lab, bpffs_root, state_dir)
    h.plugin(PLUGIN, "maps_typed.c")
    h.run("dispatcher", name="maps", attach="tc_ingress", tc_backend="tcx",
          plugins=[{"plugin": PLUGIN, "function": "filter"}], **place(lab, "b"))
    setmap(h, "settings", [{"key": 0, "value": {"limit": 1}}])
    assert udp_burst(lab, 9999, 5) == 5, "nothing blocked yet"
    setmap(h, "blocked", [{"key": 9999, "value": True}])
    assert udp_burst(lab, 9999, 5) == 0, "the port written by datapath_map is dropped"
    assert udp_burst(lab, 9998, 3) == 3
    dropped = sum(struct.unpack("<%dQ" % libbpf.num_possible_cpus(), raw_map(h, "stats")[struct.pack("<I", 1)]))
    assert dropped == 5
    setmap(h, "blocked", [{"key": 9999}], state="absent")
    assert udp_burst(lab, 9999, 5) == 5
    h.run("dispatcher", name="maps", state="absent")
