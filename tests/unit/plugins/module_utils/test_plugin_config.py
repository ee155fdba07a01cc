# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plugin settings without root or a kernel: how recorded settings are named
in each object, how they enter the build fingerprint, how records carry them.
(The encoding by BTF and the loads are tested in
tests/integration/test_plugin_settings.py, on real objects.)"""

import hashlib

from ansible_collections.ebpf.datapath.plugins.module_utils import planner, plugin_config
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Chain, Plugin, fingerprint


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def plugin(name):
    functions = {"check": {"params": ["struct __sk_buff *"], "ret": "int"}}
    return Plugin(name, {"src": "/src/%s.c" % name, "sha256": sha(name)}, [], [], sha(name + ".plain"),
                  sha(name + ".link"), functions, ["counts"], {"check": "dpp_%s__check" % name},
                  {"dpp_%s__counts" % name: "counts"})


def configured(name, data, src=True):
    record = plugin(name)
    if not src:
        record.source = {"object": "/obj/%s.o" % name, "sha256": "0" * 64}
    return record.with_config({"port": 53}, data)


def test_settings_are_named_as_in_each_object():
    record = configured("dns", {"port": "3500", "mode": "01"})
    assert plugin_config.symbols(record, linked=True) == [("dpp_dns__mode", b"\x01"), ("dpp_dns__port", b"\x35\x00")]
    assert plugin_config.symbols(record, linked=False) == [("mode", b"\x01"), ("port", b"\x35\x00")]
    # A prebuilt object is linked as it is: its globals keep their names.
    assert plugin_config.symbols(configured("obj", {"port": "3500"}, src=False), linked=True) == [
        ("port", b"\x35\x00")]


def test_settings_enter_the_fingerprint_only_where_a_plugin_has_some():
    chain = Chain([["acl", "check"], ["counter", "check"]], [])
    plain = {"acl": plugin("acl"), "counter": plugin("counter")}
    before = planner.build_inputs("tc", chain, None, plain, "link")
    assert "config" not in before, "plugins without settings keep their fingerprints"
    with_cfg = dict(plain, acl=configured("acl", {"port": "3500"}))
    inputs = planner.build_inputs("tc", chain, None, with_cfg, "link")
    assert inputs["config"] == {"acl": {"port": "3500"}}
    other = dict(plain, acl=configured("acl", {"port": "3600"}))
    assert fingerprint(planner.build_inputs("tc", chain, None, other, "link")) != fingerprint(inputs)


def test_records_carry_settings_and_compare_by_their_bytes():
    record = configured("acl", {"port": "3500"})
    again = Plugin.from_json(record.to_json())
    assert again.config == {"port": 53} and again.config_data == {"port": "3500"}
    assert again.same_build(record)
    assert not record.same_build(configured("acl", {"port": "3600"}))
    assert not plugin("acl").same_build(record)
    # A record written before settings existed reads as one without any.
    data = plugin("acl").to_json()
    for key in ("config", "config_data", "prog_arrays"):
        data.pop(key)
    assert Plugin.from_json(data).same_build(plugin("acl"))


def test_data_sections():
    assert all(plugin_config._is_data_section(s) for s in (".rodata", ".data", ".bss", ".data.cfg", ".rodata.x"))
    assert not any(plugin_config._is_data_section(s) for s in (".maps", "license", ".kconfig", ".rodata_x"))
