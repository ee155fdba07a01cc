# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Golden files of the generated dispatcher C, no root needed.

The files under data/golden/ were written by the previous release's code
(commit 028bc1a, dispatcher.render) for the same inputs, so these tests also
prove the refactor left the generated programs byte for byte as they were. A
deliberate change of the template bumps planner.TEMPLATE_VERSION and rewrites
the files (set EBPF_DATAPATH_UPDATE_GOLDEN=1 and review the diff).
"""

import os

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden")

# (file, program family, pre symbols, post symbols, main symbol, freplace stubs?, label)
CASES = [
    # tcx and clsact run the same tc program: one golden file serves both backends.
    ("tc-link.c", "tc", ["dpp_acl__check", "dpp_counter__count"], ["dpp_verdicts__record"], None, False, "link mode"),
    ("tc-link-main.c", "tc", ["dpp_counter__count"], [], "dpp_lb__pick", False, "link mode"),
    ("xdp-link.c", "xdp", ["dpp_counter__count_xdp"], ["dpp_verdicts__record_xdp"], None, False, "link mode"),
    ("cilium-link.c", "cilium", ["dpp_counter__count", "dpp_acl__check"], ["dpp_verdicts__record"], None, False,
     "link mode"),
    ("tc-freplace.c", "tc", ["dp_pre_0", "dp_pre_1"], ["dp_post_0"], "dp_main", True, "freplace mode"),
    ("xdp-freplace.c", "xdp", ["dp_pre_0"], ["dp_post_0"], None, True, "freplace mode"),
    ("cilium-freplace.c", "cilium", ["dp_pre_0"], [], None, True, "freplace mode"),
]


def _check(name, text):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("EBPF_DATAPATH_UPDATE_GOLDEN"):
        with open(path, "w") as handle:
            handle.write(text)
    with open(path) as handle:
        assert text == handle.read(), "generated C differs from %s" % path


@pytest.mark.parametrize("name, family, pre, post, main, stubs, label", CASES, ids=[c[0] for c in CASES])
def test_dispatcher_source_matches_its_golden_file(name, family, pre, post, main, stubs, label):
    _check(name, dispatcher.generate_source(family, pre, post, main, label=label, stubs=stubs))


def test_freplace_extension_wrappers_match_their_golden_file():
    bindings = [("acl", "check", "dp_pre_0", False), ("acl", "check", "dp_pre_2", False),
                ("acl", "note", "dp_post_0", True)]
    _check("tc-freplace-extensions.c", dispatcher.extension_source("tc", bindings))


def test_stub_names_follow_the_chain():
    assert dispatcher.stub_names(2, 1, True) == (["dp_pre_0", "dp_pre_1"], ["dp_post_0"], "dp_main")
    assert dispatcher.stub_names(0, 0, False) == ([], [], None)


def test_a_symbol_hooked_twice_is_declared_once():
    text = dispatcher.generate_source("tc", ["dpp_a__f", "dpp_a__f"], [], None)
    assert text.count("extern int dpp_a__f(") == 1 and text.count("verdict = dpp_a__f(ctx);") == 2


def test_tc_programs_restore_cb4_and_others_do_not_touch_it():
    tc = dispatcher.generate_source("tc", ["dpp_a__f"], [], None)
    assert "ctx->cb[DP_CB_CILIUM_CUSTOM] = saved_cb;" in tc
    cilium = dispatcher.generate_source("cilium", ["dpp_a__f"], [], None)
    assert "saved_cb" not in cilium and "verdict = (int)(ctx->cb[DP_CB_CILIUM_CUSTOM] >> 24);" in cilium
    xdp = dispatcher.generate_source("xdp", ["dpp_a__f_xdp"], [], None)
    assert "cb[" not in xdp.split("#define DP_CB_CILIUM_CUSTOM 4")[1] and "verdict = XDP_PASS;" in xdp


def test_a_tc_chain_none_of_whose_code_reaches_cb4_leaves_it_alone():
    """cb4=False (inline mode, when object_info.reaches_cb4 is False for every
    plugin): no save, zero or restore, and no ctx barrier with the parse."""
    kept = dispatcher.generate_source("tc", ["dpp_a__f"], [], None, parsed=["dpp_a__f"])
    left = dispatcher.generate_source("tc", ["dpp_a__f"], [], None, parsed=["dpp_a__f"], cb4=False)
    assert "saved_cb" in kept and 'asm volatile("" : "+r"(ctx));' in kept
    assert "saved_cb" not in left and "asm volatile" not in left and "cb[" not in left.split("int dp_dispatcher")[1]
    assert "verdict = dpp_a__f(ctx, &dp_pkt);" in left
    # Only tc has the handling to leave out: cilium reads the verdict word either way.
    cilium = dispatcher.generate_source("cilium", ["dpp_a__f"], [], None, cb4=False)
    assert "verdict = (int)(ctx->cb[DP_CB_CILIUM_CUSTOM] >> 24);" in cilium
