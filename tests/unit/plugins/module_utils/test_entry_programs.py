# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Entry programs (functions under SEC("tc"), SEC("xdp") ...) in the generated
dispatcher and in the planner's checks, no root needed. The packets that prove
them run are in tests/integration/test_real_programs.py."""

import hashlib

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher, planner, plugin_store
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Chain, DispatcherRequest, FunctionRef, Hook, Plugin

TC = "struct __sk_buff *"
XDP = "struct xdp_md *"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def entry_plugin(name, prebuilt=False):
    functions = {"tc_main": {"params": [TC], "ret": "int"}, "xdp_main": {"params": [XDP], "ret": "int"},
                 "hook": {"params": [TC, "int"], "ret": "int"}}
    entries = {"tc_main": {"section": "tc", "family": "tc"}, "xdp_main": {"section": "xdp", "family": "xdp"}}
    source = {"object": "/o/%s.o" % name} if prebuilt else {"src": "/src/%s.c" % name}
    symbols = dict((f, f if prebuilt else "dpp_%s__%s" % (name, f)) for f in functions)
    return Plugin(name, dict(source, sha256=sha(name)), [], [], sha(name + ".plain"), sha(name + ".link"),
                  functions, [], symbols, {}, entries=entries, link_entries=[] if prebuilt else sorted(entries))


def test_an_entry_program_at_post_is_called_with_the_context_and_its_pass_continues():
    text = dispatcher.generate_source("tc", ["dpp_e__pre"], ["dpp_e__post", "dpp_v__record"], None,
                                      entries={"dpp_e__pre", "dpp_e__post"})
    assert "extern int dpp_e__post(struct __sk_buff *ctx);" in text
    assert "extern int dpp_v__record(struct __sk_buff *ctx, int verdict);" in text
    assert "\tif (verdict != DP_CONTINUE && verdict != TC_ACT_OK)\n\t\tgoto out;" in text
    assert "\tret = dpp_e__post(ctx);\n\tif (ret != DP_CONTINUE && ret != TC_ACT_OK) {" in text
    assert "\tret = dpp_v__record(ctx, verdict);\n\tif (ret != DP_CONTINUE) {" in text


def test_xdp_entry_programs_pass_on_xdp_pass():
    text = dispatcher.generate_source("xdp", ["dpp_e__x"], [], None, entries={"dpp_e__x"})
    assert "verdict != DP_CONTINUE && verdict != XDP_PASS" in text


def test_freplace_stubs_of_entry_programs_take_the_context_only_and_get_no_wrapper():
    text = dispatcher.generate_source("tc", [], ["dp_post_0"], None, stubs=True, entries={"dp_post_0"})
    assert "__attribute__((noinline)) int dp_post_0(struct __sk_buff *ctx)\n" in text
    wrappers = dispatcher.extension_source("tc", [("e", "tc_main", "dp_pre_0", False), ("e", "hook", "dp_post_0", True)],
                                           entries={"tc_main": {}})
    assert "tc_main" not in wrappers and 'SEC("freplace/dp_post_0")' in wrappers


def test_without_entry_programs_the_source_is_as_before():
    assert dispatcher.generate_source("tc", ["a"], ["b"], "m") == dispatcher.generate_source("tc", ["a"], ["b"], "m",
                                                                                             entries=())


def test_planner_takes_entry_programs_at_either_hook_of_their_family():
    plugins = {"e": entry_plugin("e")}
    req = DispatcherRequest(attach="tc_ingress", interface="veth0", mode="link", main=FunctionRef("e", "tc_main"),
                            hooks=[Hook("e", "tc_main", "post")])
    chain, _warnings = planner.solve("d", req, plugins)
    assert [tuple(x) for x in chain.post] == [("e", "tc_main")]
    planner.check_link_conflicts(req, chain, plugins)
    with pytest.raises(DatapathError, match=r'SEC\("xdp"\), which cannot run at a tc attach point'):
        planner.solve("d", req.replace(hooks=[Hook("e", "xdp_main", "pre")]), plugins)
    xdp = DispatcherRequest(attach="xdp", interface="veth0", mode="link", hooks=[Hook("e", "tc_main", "pre")])
    with pytest.raises(DatapathError, match="cannot run at an xdp attach point"):
        planner.solve("d", xdp, plugins)


def test_link_mode_refuses_the_entry_programs_of_a_prebuilt_object():
    plugins = {"p": entry_plugin("p", prebuilt=True)}
    req = DispatcherRequest(attach="tc_ingress", interface="veth0", mode="link", hooks=[Hook("p", "tc_main", "pre")])
    with pytest.raises(DatapathError, match="prebuilt object keeps it a program of its own; use mode: freplace"):
        planner.check_link_conflicts(req, Chain([["p", "tc_main"]], []), plugins)


def test_the_define_that_moves_an_entry_program_to_text():
    define = plugin_store._as_function("dpp_p__fn", "int")  # pylint: disable=protected-access
    assert define == 'dp_entry__dpp_p__fn(void); int __attribute__((section(".text"))) dpp_p__fn'


def test_a_final_entry_program_ends_the_chain_with_whatever_it_returns():
    text = dispatcher.generate_source("tc", ["dpp_e__a", "dpp_c__count"], ["dpp_e__b"], None,
                                      entries={"dpp_e__a", "dpp_e__b"}, final=[("pre", "dpp_e__a"), ("post", "dpp_e__b")])
    assert "\tverdict = dpp_e__a(ctx);\n\tgoto out;\n\tverdict = dpp_c__count(ctx);" in text
    assert "\tverdict = dpp_e__b(ctx);\n\tgoto out;\n" in text


def test_build_inputs_name_final_hooks_only_when_there_are_some():
    plugins = {"e": entry_plugin("e")}
    chain = Chain([["e", "tc_main"]], [])
    plain = planner.build_inputs("tc", chain, None, plugins, "link", planner.final_hooks(
        DispatcherRequest(attach="tc_ingress", interface="veth0", mode="link", hooks=[Hook("e", "tc_main", "pre")])))
    assert "final" not in plain, "dispatchers without verdict: final keep their fingerprints"
    final_req = DispatcherRequest(attach="tc_ingress", interface="veth0", mode="link",
                                  hooks=[Hook("e", "tc_main", "pre", verdict="final")])
    assert planner.build_inputs("tc", chain, None, plugins, "link", planner.final_hooks(final_req))["final"] == [
        ["pre", "e", "tc_main"]]
    assert Hook("e", "tc_main").to_json() == {"plugin": "e", "function": "tc_main", "hook": "pre", "constraints": [],
                                              "priority": 50}
