# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plugin settings (datapath_plugin's ``config``, issue 13) through the real
modules on this kernel, with real packets.

bpf/testdata/configurable.c has const volatile settings (a port, a bool, an
enum, an IPv4 source, a MAC), an initialised .data global and a .bss one.
Slots of its `counts` map: 0 seen, 1 matched, 2 sum of data_step + bss_base
per packet, 3 dropped.
"""

import os

import pytest

from modhost import DROP_PORT, OPEN_PORT, Host, place, registry_bytes, udp_burst

SEEN, MATCHED, SUM, DROPPED = 0, 1, 2, 3


@pytest.fixture
def host(lab, bpffs_root, state_dir):
    lab.quiet()
    return Host(lab, bpffs_root, state_dir)


def dispatcher_args(lab, *plugins):
    return dict(name="cfg-d", attach="tc_ingress", tc_backend="tcx", mode="link", **place(lab, "b"),
                plugins=[{"plugin": p, "function": "configured_check", "priority": 10 * (i + 1)}
                         for i, p in enumerate(plugins)])


def test_two_instances_of_one_source_act_differently(host, lab, state_dir):
    a = host.plugin("cfg_a", "configurable.c", config={"match_port": DROP_PORT, "action": "ACTION_DROP"})
    b = host.plugin("cfg_b", "configurable.c",
                    config={"match_port": OPEN_PORT, "action": "ACTION_COUNT", "data_step": 5, "bss_base": 2})
    assert a["changed"] and b["changed"]
    assert b["plugin"]["config"] == {"match_port": OPEN_PORT, "action": "ACTION_COUNT", "data_step": 5, "bss_base": 2}
    assert host.run("dispatcher", **dispatcher_args(lab, "cfg_a", "cfg_b"))["changed"] is True

    assert udp_burst(lab, DROP_PORT, 4) == 0, "cfg_a drops its port"
    assert udp_burst(lab, OPEN_PORT, 3) == 3, "cfg_b only counts its port"
    assert [host.counter("cfg_a", key=k) for k in (SEEN, MATCHED, SUM, DROPPED)] == [7, 4, 7, 4]
    # cfg_b saw what cfg_a let on: the three to its port, each adding data_step 5 + bss_base 2.
    assert [host.counter("cfg_b", key=k) for k in (SEEN, MATCHED, SUM, DROPPED)] == [3, 3, 21, 0]

    # The same settings again: nothing changes, in check mode or not.
    again = dict(config={"match_port": OPEN_PORT, "action": "ACTION_COUNT", "data_step": 5, "bss_base": 2})
    assert host.plugin("cfg_b", "configurable.c", _check=True, **again)["changed"] is False
    assert host.plugin("cfg_b", "configurable.c", **again)["changed"] is False
    assert host.run("dispatcher", **dispatcher_args(lab, "cfg_a", "cfg_b"))["changed"] is False

    # A change in check mode: reported, nothing rebuilt, traffic as before.
    generation = host.run("dispatcher", **dispatcher_args(lab, "cfg_a", "cfg_b"))["generation"]
    drop = dict(config={"match_port": OPEN_PORT, "action": "ACTION_DROP", "data_step": 5, "bss_base": 2})
    checked = host.plugin("cfg_b", "configurable.c", _check=True, **drop)
    assert checked["changed"] is True
    assert "config action: \"ACTION_DROP\"" in checked["diff"]["after"]
    assert "config action: \"ACTION_COUNT\"" in checked["diff"]["before"]
    assert udp_burst(lab, OPEN_PORT, 2) == 2

    # The change: one rebuild and swap of the dispatcher using it; counts survive.
    changed = host.plugin("cfg_b", "configurable.c", **drop)
    assert changed["changed"] is True and changed["rebuilt"] == ["cfg-d"]
    rerun = host.run("dispatcher", **dispatcher_args(lab, "cfg_a", "cfg_b"))
    assert rerun["changed"] is False and rerun["generation"] == generation + 1
    assert udp_burst(lab, OPEN_PORT, 3) == 0, "cfg_b now drops its port"
    assert host.counter("cfg_b", key=MATCHED) == 3 + 2 + 3 and host.counter("cfg_b", key=DROPPED) == 3
    assert host.plugin("cfg_b", "configurable.c", **drop)["changed"] is False

    # Dropping a setting goes back to the source's value (ACTION_COUNT).
    assert host.plugin("cfg_b", "configurable.c", config={"match_port": OPEN_PORT})["changed"] is True
    assert udp_burst(lab, OPEN_PORT, 2) == 2


def test_addresses_as_text_select_the_sender(host, lab):
    mac_a = lab.mac(lab.ns_a, lab.if_a)
    host.plugin("from_a", "configurable.c",
                config={"match_port": DROP_PORT, "action": "ACTION_DROP", "only_from": lab.addr_a, "from_mac": mac_a})
    host.plugin("from_other", "configurable.c",
                config={"match_port": OPEN_PORT, "action": "ACTION_DROP", "only_from": "192.0.2.99"})
    host.plugin("other_mac", "configurable.c",
                config={"match_port": OPEN_PORT, "action": "ACTION_DROP", "from_mac": "02:00:00:00:00:99"})
    host.run("dispatcher", **dispatcher_args(lab, "from_a", "from_other", "other_mac"))
    assert udp_burst(lab, DROP_PORT, 3) == 0, "sender address and MAC match: dropped"
    assert udp_burst(lab, OPEN_PORT, 3) == 3, "another address or MAC: not matched"
    assert host.counter("from_a", key=MATCHED) == 3
    assert host.counter("from_other", key=MATCHED) == 0 and host.counter("other_mac", key=MATCHED) == 0
    # disabled by a bool: nothing matches any more
    host.plugin("from_a", "configurable.c",
                config={"match_port": DROP_PORT, "action": "ACTION_DROP", "only_from": lab.addr_a,
                        "from_mac": mac_a, "enabled": False})
    assert udp_burst(lab, DROP_PORT, 2) == 2


BAD = [
    ({"no_such": 1}, ["'no_such' is no variable", "match_port"]),
    ({"hidden_setting": 0}, ["'hidden_setting'", "static"]),
    ({"match_port": 70000}, ["'match_port'", "__u16", "out of range"]),
    ({"match_port": "http"}, ["'match_port'", "__u16"]),
    ({"action": "ACTION_REJECT"}, ["'action'", "enum match_action", "ACTION_COUNT, ACTION_DROP"]),
    ({"enabled": "maybe"}, ["'enabled'", "_Bool", "true or false"]),
    ({"only_from": "10.1.2"}, ["'only_from'", "__be32", "IPv4"]),
    ({"from_mac": "02:00:00:00:01"}, ["'from_mac'", "[6]"]),
]


@pytest.mark.parametrize("config,words", BAD, ids=[list(c)[0] + "-" + str(i) for i, (c, _w) in enumerate(BAD)])
def test_bad_settings_are_refused_with_nothing_changed(host, lab, state_dir, config, words):
    host.plugin("cfg_a", "configurable.c", config={"match_port": DROP_PORT, "action": "ACTION_DROP"})
    first = host.run("dispatcher", **dispatcher_args(lab, "cfg_a"))
    before = registry_bytes(state_dir)
    pins = sorted(os.listdir(os.path.join(host.bpffs_root, "plugins", "cfg_a", "maps")))
    failed = host.plugin("cfg_a", "configurable.c", config=config, _fail=True)
    for word in words:
        assert word in failed["msg"], (word, failed["msg"])
    assert "plugin 'cfg_a'" in failed["msg"]
    assert registry_bytes(state_dir) == before
    assert sorted(os.listdir(os.path.join(host.bpffs_root, "plugins", "cfg_a", "maps"))) == pins
    again = host.run("dispatcher", **dispatcher_args(lab, "cfg_a"))
    assert again["changed"] is False and again["generation"] == first["generation"]
    assert udp_burst(lab, DROP_PORT, 2) == 0, "the running chain still drops with its settings"
