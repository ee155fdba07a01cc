# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One parse for the whole chain (ebpf_datapath.h's struct dp_pkt, issue 14),
through the real modules on this kernel, with real packets: hooks that take
`const struct dp_pkt *pkt` get the headers the dispatcher parsed once; hooks
without it keep working beside them.

bpf/testdata/parsed.c counts: 0 packets with a parse, 1 IPv4, 2 IPv6, 3 UDP to
DROP_PORT, 4 the last destination port, 5 post hook runs."""

import socket

import pytest

from modhost import DROP_PORT, OPEN_PORT, Host, place, udp_burst

PARSED, IPV4, IPV6, DROPS, LAST_PORT, POSTS = range(6)


@pytest.fixture
def host(lab, bpffs_root, state_dir):
    # IPv6 stays on (no lab.quiet()): the parse is checked on IPv6 packets too,
    # and the comparisons below hold with neighbour discovery going on.
    return Host(lab, bpffs_root, state_dir)


def slots(host, plugin="parsed"):
    return [host.counter(plugin, key=k) for k in range(6)]


@pytest.mark.parametrize("attach,side", [("tc_ingress", "b"), ("xdp", "b")])
def test_hooks_read_the_chains_parse(host, lab, attach, side):
    host.plugin("parsed", "parsed.c")
    host.plugin("counter", "counter.c")
    xdp = attach == "xdp"
    plugins = [{"plugin": "counter", "function": "count_xdp" if xdp else "count", "priority": 10},
               {"plugin": "parsed", "function": "parsed_drop_xdp" if xdp else "parsed_drop", "priority": 20}]
    if not xdp:
        plugins.append({"plugin": "parsed", "function": "parsed_post", "hook": "post"})
    args = dict(name="po", attach=attach, mode="link", tc_backend="tcx", **place(lab, side), plugins=plugins)
    assert host.run("dispatcher", **args)["changed"] is True
    assert udp_burst(lab, DROP_PORT, 4) == 0, "the parse names UDP port 7777: dropped"
    assert udp_burst(lab, OPEN_PORT, 3) == 3
    assert udp_burst(lab, OPEN_PORT, 2, family=socket.AF_INET6) == 2
    counts = slots(host)
    assert counts[IPV4] >= 7 and counts[IPV6] >= 2 and counts[DROPS] == 4
    assert counts[PARSED] == host.counter("counter"), "the hook ran for every packet the chain saw"
    if not xdp:
        assert counts[POSTS] >= 5, "the post hook got the parse too"
    assert host.run("dispatcher", **args)["changed"] is False


def test_a_bad_signature_names_the_parse_parameter(host, lab):
    host.plugin("parsed", "parsed.c")
    failed = host.run("dispatcher", name="po", attach="tc_ingress", mode="link", tc_backend="tcx",
                      **place(lab, "b"), _fail=True,
                      plugins=[{"plugin": "parsed", "function": "parsed_post"}])
    assert "a pre hook at this attach point needs int parsed_post(struct __sk_buff *, struct dp_pkt *)" in \
        failed["msg"], failed["msg"]


@pytest.mark.parametrize("attach", ["tc_ingress", "xdp"])
def test_the_parse_inline(host, lab, attach):
    """In inline mode the parse and the hooks reading it are one function
    LLVM optimises together; at tc the dispatcher's cb[4] restore must still
    address ctx as the verifier wants (a compiler barrier, see dispatcher.py)."""
    host.plugin("parsed", "parsed.c")
    xdp = attach == "xdp"
    plugins = [{"plugin": "parsed", "function": "parsed_drop_xdp" if xdp else "parsed_drop"}]
    if not xdp:
        plugins.append({"plugin": "parsed", "function": "parsed_post", "hook": "post"})
    args = dict(name="pi", attach=attach, mode="inline", tc_backend="tcx", **place(lab, "b"), plugins=plugins)
    assert host.run("dispatcher", **args)["mode"] == "inline"
    assert udp_burst(lab, DROP_PORT, 3) == 0
    assert udp_burst(lab, OPEN_PORT, 2) == 2
    assert slots(host)[DROPS] == 3 and slots(host)[LAST_PORT] in (DROP_PORT, OPEN_PORT)
    assert host.run("dispatcher", stats=True, **args)["changed"] is True, "and with statistics on"
    assert udp_burst(lab, OPEN_PORT, 2) == 2
