# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-plugin statistics without a kernel: the C the dispatcher counts with,
the order of the counted calls, and the decoding of per-CPU values."""

import struct

from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher, dispatcher_stats, planner
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Chain, FunctionRef


def test_the_dispatcher_counts_after_every_call_only_when_asked():
    plain = dispatcher.generate_source("tc", ["a", "b"], ["c"], "m")
    assert "dp_stats" not in plain and "dp_count" not in plain
    text = dispatcher.generate_source("tc", ["a", "b"], ["c"], "m", stats=True)
    assert "struct dp_hook_stats hook[4];" in text
    assert "\tverdict = a(ctx);\n\tdp_count(&dp_st->hook[0], verdict);" in text
    assert "\tverdict = b(ctx);\n\tdp_count(&dp_st->hook[1], verdict);" in text
    assert "\tverdict = m(ctx);\n\tdp_count(&dp_st->hook[2], verdict);" in text
    assert "\tret = c(ctx, verdict);\n\tdp_count(&dp_st->hook[3], ret);" in text
    # At a Cilium slot the never-taken fallback is Cilium's verdict, as without statistics.
    cilium = dispatcher.generate_source("cilium", ["a"], [], None, stats=True)
    assert "return (int)(ctx->cb[DP_CB_CILIUM_CUSTOM] >> 24);" in cilium


def test_statistics_enter_the_fingerprint_only_when_on():
    chain = Chain([], [])
    assert "stats" not in planner.build_inputs("tc", chain, None, {}, "link")
    assert planner.build_inputs("tc", chain, None, {}, "link", stats=True)["stats"] is True


def test_counted_calls_follow_the_dispatcher_order():
    chain = Chain([["a", "f"], ["b", "g"]], [["c", "h"]])
    assert dispatcher_stats.counted_calls(chain, FunctionRef("m", "main")) == [
        ("pre", "a", "f"), ("pre", "b", "g"), ("main", "m", "main"), ("post", "c", "h")]
    assert dispatcher_stats.counted_calls(chain, None)[-1] == ("post", "c", "h")


def _hook(cont=0, other=0, verdicts=None):
    words = [cont, other] + [0] * dispatcher_stats.VERDICT_BUCKETS
    for value, count in (verdicts or {}).items():
        words[2 + value] = count
    return words


def test_per_cpu_values_are_summed_by_plugin_with_verdict_names():
    calls = [("pre", "acl", "check"), ("main", "m", "main")]
    cpu0 = struct.pack("<%dQ" % (2 * 18), *(_hook(cont=5, verdicts={2: 1}) + _hook(verdicts={0: 5})))
    cpu1 = struct.pack("<%dQ" % (2 * 18), *(_hook(cont=2, other=1) + _hook(verdicts={0: 2, 7: 1})))
    acl, main = dispatcher_stats.decode("tc", calls, [cpu0, cpu1])
    assert acl == {"hook": "pre", "plugin": "acl", "function": "check", "runs": 9, "continue": 7,
                   "verdicts": {"TC_ACT_SHOT": 1}, "other": 1, "runs_per_cpu": [6, 3]}
    assert main["verdicts"] == {"TC_ACT_OK": 7, "TC_ACT_REDIRECT": 1} and main["runs"] == 8
    xdp = dispatcher_stats.decode("xdp", calls[:1], [struct.pack("<18Q", *_hook(verdicts={1: 4, 9: 1}))])
    assert xdp[0]["verdicts"] == {"XDP_DROP": 4, "9": 1}


def test_hooks_that_take_the_parse_get_the_dispatchers_one_parse():
    text = dispatcher.generate_source("tc", ["a", "b"], ["c"], "m", parsed={"b", "c"})
    assert '#include "ebpf_datapath.h"' in text
    assert "extern int a(struct __sk_buff *ctx);" in text
    assert "extern int b(struct __sk_buff *ctx, const struct dp_pkt *pkt);" in text
    assert "extern int c(struct __sk_buff *ctx, const struct dp_pkt *pkt, int verdict);" in text
    assert text.index("dp_parse((void *)(long)ctx->data") < text.index("verdict = a(ctx);")
    assert "verdict = b(ctx, &dp_pkt);" in text and "ret = c(ctx, &dp_pkt, verdict);" in text
    plain = dispatcher.generate_source("tc", ["a"], [], None)
    assert "dp_parse" not in plain and "ebpf_datapath.h" not in plain, "no parse when no hook takes it"
    # freplace stubs keep the parameter (and use it, so clang keeps passing it).
    stubs = dispatcher.generate_source("xdp", ["dp_pre_0"], [], None, stubs=True, parsed={"dp_pre_0"})
    assert "int dp_pre_0(struct xdp_md *ctx, const struct dp_pkt *pkt)" in stubs and "if (!ctx || !pkt)" in stubs
    wrappers = dispatcher.extension_source("tc", [("p", "f", "dp_post_0", True)], parsed={"f"})
    assert "int dp_ext_post_0(struct __sk_buff *ctx, const struct dp_pkt *pkt, int verdict)" in wrappers
    assert "\tif (!pkt)\n\t\treturn verdict;\n\treturn f(ctx, pkt, verdict);" in wrappers
