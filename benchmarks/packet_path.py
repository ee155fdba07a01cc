# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Packet-path cost through BPF_PROG_TEST_RUN, all variants in one process, one packet:

* direct: a pass-through tc program, and one that also saves, zeroes and
  restores cb[4] as the dispatcher does;
* link: the link-mode dispatcher with 0, 1, 8, 32, 64 no-op plugins, built
  exactly as the engine builds it;
* tailcall: a tail-call chain (custom-call style) of 0, 1, 8, 32 hops (the kernel
  stops a chain after 33 tail calls, so 64 hops cannot be built);
* inline: the same no-op chains with the plugins inlined, built by the
  collection's inline_build.prepare_inline (inline_chain.py loads the object);
* work: eight plugins that each count the packet's IP protocol in their own map,
  as a link-mode chain and as an inline build, against merged.c: the same work
  written by hand as one program (parse once), and the same work concatenated
  (each plugin's code one after the other, as inlining produces it);
* parse once: eight plugins that count the same from the chain's one parse
  (parsed_count.c, struct dp_pkt), link and inline, against merged.c's
  `merged_parsed`: the same work by hand, one dp_parse() and eight counts.
"""

import os
import struct

from common import (BPF_DIR, cpu_mitigations, cpu_model, fit_slope, libbpf, log, paired, paired_cpu,
                    remove_bpffs_tree, time_prog, udp_packet)
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps, bpf_object
import inline_chain
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

PLUGIN_COUNTS = (0, 1, 8, 32, 64)
HOP_COUNTS = (0, 1, 8, 32)
MAX_TAIL_CALLS = 33  # the kernel's MAX_TAIL_CALL_CNT
WORK_PLUGINS = 8


def _fit(table, counts):
    xs = list(counts)
    slope, intercept = fit_slope(xs, [table[str(n)]["median_ns"] for n in xs])
    return {"slope_ns": slope, "intercept_ns": intercept}


def _stats_were_on(fd):
    """True when the kernel counted runs of this program (bpf_stats_enabled, by
    sysctl or by someone's BPF_ENABLE_STATS fd), which adds two clock reads per run."""
    return libbpf.prog_info(fd).run_cnt > 0


def bench(scratch, repeat, runs):
    pkt = udp_packet()
    out = {"packet_bytes": len(pkt), "repeat": repeat, "runs": runs, "stats_on_during_runs": False,
           "cpu": cpu_model(), "cpu_mitigations": cpu_mitigations()}
    tc = Toolchain(scratch.cache, run_subprocess)
    direct = bpf_object.BpfObject.open_file(tc.compile(os.path.join(BPF_DIR, "direct.c")).object_path)
    try:
        direct.load()
        direct_fd = direct.program("direct").fd
        out["direct"] = time_prog(direct_fd, pkt, repeat, runs)
        out["direct_cb"] = time_prog(direct.program("direct_cb").fd, pkt, repeat, runs)
        out["stats_on_during_runs"] |= _stats_were_on(direct_fd)
        log("direct: %.1f ns, direct with the cb[4] save/restore: %.1f ns"
            % (out["direct"]["median_ns"], out["direct_cb"]["median_ns"]))
        _tailcalls(tc, out, pkt, repeat, runs)
        with scratch.engine("pkt") as eng:
            _link_and_inline(scratch, eng, out, pkt, repeat, runs, direct_fd)
            _work(eng, out, pkt, repeat, runs)
            _parse_once(eng, out, pkt, repeat, runs)
    finally:
        direct.close()
    out["link_fit"] = _fit(out["link"], PLUGIN_COUNTS)
    out["inline_fit"] = _fit(out["inline"], PLUGIN_COUNTS)
    out["tailcall_fit"] = _fit(out["tailcall"], HOP_COUNTS)
    return out


def _tailcalls(tc, out, pkt, repeat, runs):
    tail = bpf_object.BpfObject.open_file(tc.compile(os.path.join(BPF_DIR, "tailcall.c")).object_path)
    try:
        tail.load()
        entry_fd, hop_fd, hops_fd = tail.program("entry").fd, tail.program("hop").fd, tail.map("hops").fd
        out["tailcall"] = {}
        for n in HOP_COUNTS:
            for slot in range(64):
                key = struct.pack("I", slot)
                if slot < n:
                    bpf_maps.map_update(hops_fd, key, struct.pack("I", hop_fd))
                else:
                    bpf_maps.map_delete(hops_fd, key)
            out["tailcall"][str(n)] = time_prog(entry_fd, pkt, repeat, runs)
            log("tail calls, %d hops: %.1f ns" % (n, out["tailcall"][str(n)]["median_ns"]))
    finally:
        tail.close()


def _link_and_inline(scratch, eng, out, pkt, repeat, runs, direct_fd):
    names = ["noop%02d" % i for i in range(max(PLUGIN_COUNTS))]
    for name in names:
        eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "noop.c"))
    out["link"], out["inline"], out["inline_build_s"] = {}, {}, {}
    try:
        for n in PLUGIN_COUNTS:
            chain = {"pre": [[name, "noop"] for name in names[:n]], "post": []}
            dname = "bench%d" % n
            built = disp_mod.build_link(eng.toolchain, eng.layout, dname, "tc", chain, None,
                                        eng.registry.plugins, eng.layout.generation_prog_pin(dname, 1))
            inline = inline_chain.build(eng, "tc", chain)
            out["inline_build_s"][str(n)] = inline.build_s
            try:
                inline_fd = inline.fd
                out["link"][str(n)] = time_prog(built.fd, pkt, repeat, runs)
                out["inline"][str(n)] = time_prog(inline_fd, pkt, repeat, runs)
                out["stats_on_during_runs"] |= _stats_were_on(built.fd)
                if n == 0:
                    out["empty_minus_direct_paired"] = paired(direct_fd, built.fd, pkt, repeat, runs)
            finally:
                inline.close()
                built.close()
                remove_bpffs_tree(eng.layout.dispatcher_dir(dname))
            log("%d no-op plugins: link %.1f ns, inline %.1f ns"
                % (n, out["link"][str(n)]["median_ns"], out["inline"][str(n)]["median_ns"]))
    finally:
        for name in names:
            eng.remove_plugin(name)


def _work(eng, out, pkt, repeat, runs):
    """Eight counting plugins: link chain, inline build, hand-merged, concatenated."""
    names = ["count%d" % i for i in range(WORK_PLUGINS)]
    for name in names:
        eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "count.c"))
    chain = {"pre": [[name, "count"] for name in names], "post": []}
    merged = bpf_object.BpfObject.open_file(eng.toolchain.compile(os.path.join(BPF_DIR, "merged.c")).object_path)
    built = inline = None
    try:
        merged.load()
        built = disp_mod.build_link(eng.toolchain, eng.layout, "work", "tc", chain, None,
                                    eng.registry.plugins, eng.layout.generation_prog_pin("work", 1))
        inline = inline_chain.build(eng, "tc", chain)
        fds = {"link": built.fd, "inline": inline.fd,
               "merged": merged.program("merged").fd, "concatenated": merged.program("concatenated").fd}
        work = {"plugins": WORK_PLUGINS}
        for key, fd in sorted(fds.items()):
            work[key] = time_prog(fd, pkt, repeat, runs)
            info = libbpf.prog_info(fd)  # code size: what the builds made of the same work
            work[key].update(insns=info.xlated_prog_len // 8, jited_bytes=info.jited_prog_len)
        # The goal compares inline with hand-merged: alternate their runs so
        # drift on a shared machine hits both alike.
        pairs = max(2 * runs, 15)  # a few ns of difference: more pairs than the other variants get
        work["inline_vs_merged"] = paired(fds["merged"], fds["inline"], pkt, repeat, pairs)
        work["inline_vs_concatenated"] = paired(fds["concatenated"], fds["inline"], pkt, repeat, pairs)
        for key in ("inline_vs_merged", "inline_vs_concatenated"):
            work[key]["gap_pct"] = (work[key]["ratio_median"] - 1.0) * 100.0
        out["work"] = work
        log("8 counting plugins: link %.1f ns, inline %.1f ns, hand-merged %.1f ns, concatenated %.1f ns; "
            "inline over hand-merged %+.1f %%, over concatenated %+.1f %%"
            % (work["link"]["median_ns"], work["inline"]["median_ns"], work["merged"]["median_ns"],
               work["concatenated"]["median_ns"], work["inline_vs_merged"]["gap_pct"],
               work["inline_vs_concatenated"]["gap_pct"]))
    finally:
        if inline is not None:
            inline.close()
        if built is not None:
            built.close()
        merged.close()
        remove_bpffs_tree(eng.layout.dispatcher_dir("work"))
        for name in names:
            eng.remove_plugin(name)


# Loaded copies of each program the parse-once goal compares: pairs take them
# in turn, so no program is judged by where its one JIT image happened to land.
PARSE_ONCE_COPIES = 6


def _parse_once(eng, out, pkt, repeat, runs):
    """Eight plugins on the chain's one parse (parsed_count.c): link chain,
    inline build, and merged.c's merged_parsed (one dp_parse, eight counts)."""
    names = ["pcount%d" % i for i in range(WORK_PLUGINS)]
    for name in names:
        eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "parsed_count.c"))
    chain = {"pre": [[name, "parsed_count"] for name in names], "post": []}
    merged_path = eng.toolchain.compile(os.path.join(BPF_DIR, "merged.c")).object_path
    merged = [bpf_object.BpfObject.open_file(merged_path) for _copy in range(PARSE_ONCE_COPIES)]
    built = None
    inline = []
    try:
        for obj in merged:
            obj.load()
        built = disp_mod.build_link(eng.toolchain, eng.layout, "parsed", "tc", chain, None,
                                    eng.registry.plugins, eng.layout.generation_prog_pin("parsed", 1))
        first, refusal = inline_chain.build_or_fenced(eng, "tc", chain)
        inline.append(first)
        for _copy in range(PARSE_ONCE_COPIES - 1):
            inline.append(inline_chain.InlineDispatcher(
                inline_chain.load(eng.layout, first.build.object_path, eng.registry.plugins, first.build.used),
                first.build, 0.0))
        fds = {"link": built.fd, "inline": first.fd, "merged_parsed": merged[0].program("merged_parsed").fd,
               "merged_parsed_cb": merged[0].program("merged_parsed_cb").fd, "merged": merged[0].program("merged").fd}
        po = {"plugins": WORK_PLUGINS, "inline_refused": refusal, "copies": PARSE_ONCE_COPIES,
              "inline_fix": inline_chain.CTX_BARRIER_FIX if refusal else None,
              "inline_leaves_cb4": "saved_cb" not in _inline_source(eng, chain)}
        if refusal:
            log("the collection's inline build of 8 parse-once plugins was refused by the kernel (%s); timing the "
                "same chain built with the generated C patched: %s" % (refusal["verifier"], po["inline_fix"]))
        for key, fd in sorted(fds.items()):
            po[key] = time_prog(fd, pkt, repeat, runs)
            info = libbpf.prog_info(fd)
            po[key].update(insns=info.xlated_prog_len // 8, jited_bytes=info.jited_prog_len)
        # Every plugin counted the packet once per run (the parse reached them).
        counted = _counts_of(eng, names)
        po["counted_by_every_plugin"] = all(n > 0 for n in counted.values())
        # The goal: inline over the hand-merged program, alternated pairs over
        # loaded copies of each, timed by CPU time (sub-ns; the kernel's figure
        # is whole ns).
        pairs = max(2 * runs, 8 * PARSE_ONCE_COPIES)
        inline_fds = [d.fd for d in inline]
        po["inline_vs_merged_parsed"] = paired_cpu([m.program("merged_parsed").fd for m in merged], inline_fds,
                                                   pkt, repeat, pairs)
        # What the dispatcher's cb[4] handling costs where a chain needs it:
        # the hand-merged program doing it too.
        po["inline_vs_merged_parsed_cb"] = paired_cpu([m.program("merged_parsed_cb").fd for m in merged], inline_fds,
                                                      pkt, repeat, pairs)
        po["cb_vs_merged_parsed"] = paired_cpu([m.program("merged_parsed").fd for m in merged],
                                               [m.program("merged_parsed_cb").fd for m in merged], pkt, repeat, pairs)
        out["parse_once"] = po
        log("8 parse-once plugins: link %.1f ns, inline %.1f ns, hand-merged (dp_parse once) %.1f ns; inline / "
            "hand-merged %.3f (paired over %d loaded copies each, CPU time; kernel's whole ns: %.3f); the inline "
            "dispatcher %s cb[4]"
            % (po["link"]["median_ns"], po["inline"]["median_ns"], po["merged_parsed"]["median_ns"],
               po["inline_vs_merged_parsed"]["ratio_median"], PARSE_ONCE_COPIES,
               po["inline_vs_merged_parsed"]["ratio_median_kernel_ns"],
               "leaves" if po["inline_leaves_cb4"] else "saves, zeroes and restores"))
    finally:
        for dispatcher in inline:
            dispatcher.close()
        if built is not None:
            built.close()
        for obj in merged:
            obj.close()
        remove_bpffs_tree(eng.layout.dispatcher_dir("parsed"))
        for name in names:
            eng.remove_plugin(name)


def _inline_source(eng, chain):
    """The C the inline build generated for the chain's dispatcher (what
    prepare_inline compiled), to report whether it handles cb[4]."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import inline_build
    plugins = eng.registry.plugins
    used = [name for name, _fn in chain["pre"]]
    toolchain = getattr(eng.toolchain, "toolchain", eng.toolchain)
    return disp_mod.link_source("tc", chain, None, plugins,
                                cb4=inline_build.chain_reaches_cb4(toolchain, eng.layout, plugins, used))


def _counts_of(eng, names):
    """{plugin: sum over CPUs and keys of its pinned per-CPU counts}."""
    out = {}
    for name in names:
        fd = libbpf.obj_get(eng.layout.plugin_map_pin(name, "counts"))
        try:
            info = libbpf.map_info(fd)
            total = 0
            for key in range(info.max_entries):
                for raw in bpf_maps.map_lookup_percpu(fd, struct.pack("=I", key), info.value_size) or []:
                    total += struct.unpack("=Q", raw[:8])[0]
            out[name] = total
        finally:
            libbpf.close_fd(fd)
    return out


def summary(out):
    """The headline numbers of this section, for the top level of the results."""
    work = out["work"]
    return {
        "ns_direct": out["direct"]["median_ns"],
        "ns_direct_cb": out["direct_cb"]["median_ns"],
        "ns_dispatcher_empty": out["link"]["0"]["median_ns"],
        "ns_dispatcher_empty_over_direct_paired": out["empty_minus_direct_paired"]["diff_median_ns"],
        "ns_dispatcher_by_plugins": dict((k, v["median_ns"]) for k, v in out["link"].items()),
        "ns_per_plugin_link": out["link_fit"]["slope_ns"],
        "ns_inline_by_plugins": dict((k, v["median_ns"]) for k, v in out["inline"].items()),
        "ns_per_plugin_inline": out["inline_fit"]["slope_ns"],
        "ns_tailcall_by_hops": dict((k, v["median_ns"]) for k, v in out["tailcall"].items()),
        "ns_per_hop_tailcall": out["tailcall_fit"]["slope_ns"],
        "tailcall_hops_max": MAX_TAIL_CALLS,
        "ns_work8_link": work["link"]["median_ns"],
        "ns_work8_inline": work["inline"]["median_ns"],
        "ns_work8_merged": work["merged"]["median_ns"],
        "ns_work8_concatenated": work["concatenated"]["median_ns"],
        "inline_vs_merged_gap_pct": work["inline_vs_merged"]["gap_pct"],
        "inline_vs_concatenated_gap_pct": work["inline_vs_concatenated"]["gap_pct"],
        "bpf_stats_on_during_runs": out["stats_on_during_runs"],
        "parse_once_inline_vs_merged_ratio": out["parse_once"]["inline_vs_merged_parsed"]["ratio_median"],
        "ns_parse_once8_link": out["parse_once"]["link"]["median_ns"],
        "ns_parse_once8_inline": out["parse_once"]["inline"]["median_ns"],
        "ns_parse_once8_merged": out["parse_once"]["merged_parsed"]["median_ns"],
    }
