# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inline dispatchers for the benchmarks, built by the collection itself.

plugins/module_utils/inline_build.prepare_inline compiles a chain of installed
source plugins into one object in which every hook call is inlined (bitcode
with the plugins' namespaced renames, joined with the link-mode dispatcher's
C). The object is loaded here as the engine's ``mode: inline`` loads it
(dispatcher.open_joined: only the dispatcher program, the plugins' code
prepared as plugin_store prepares it, every map bound to its plugin's pin),
but nothing is pinned: closing the object releases the program.
"""

import time

from common import libbpf  # first: common sets up the collection's import path
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import inline_build


class InlineDispatcher:
    """A loaded inline dispatcher: .fd of its program, .build (the
    inline_build.InlineBuild), .build_s (seconds prepare_inline took)."""

    def __init__(self, obj, build, build_s):
        self.obj = obj
        self.build = build
        self.build_s = build_s

    @property
    def fd(self):
        return self.obj.program(disp_mod.DISPATCHER_FUNC).fd

    def close(self):
        if self.obj is not None:
            self.obj.close()
            self.obj = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load(layout, path, plugins, used):
    """Open and load an object holding these plugins' code as the engine loads
    a linked dispatcher (dispatcher.open_joined), without its pin; the libbpf
    object (close it). The kernel's refusal is its BpfError."""
    obj = disp_mod.open_joined(layout, path, used, plugins, layout.bpffs_root)
    try:
        obj.load()
    except BaseException:
        obj.close()
        raise
    return obj


# The generated dispatcher's restore of cb[4] on exit, and the same store after
# a compiler barrier on ctx (see CTX_BARRIER_FIX).
_CB_RESTORE = "\tctx->cb[DP_CB_CILIUM_CUSTOM] = saved_cb;"
_CB_RESTORE_FENCED = '\tasm volatile("" : "+r"(ctx));\n' + _CB_RESTORE
CTX_BARRIER_FIX = (
    "an empty asm volatile(\"\" : \"+r\"(ctx)) before the tc dispatcher's `ctx->cb[DP_CB_CILIUM_CUSTOM] = "
    "saved_cb;`, so that LLVM cannot reuse an address ctx + 64 it computed inside the inlined hooks for that "
    "store (the verifier refuses a store through a modified ctx pointer)")


def _fenced_link_source(original):
    def link_source(*args, **kwargs):
        source = original(*args, **kwargs)
        if _CB_RESTORE not in source:
            raise RuntimeError("the generated dispatcher no longer restores cb[4] as the benchmark's patch expects")
        return source.replace(_CB_RESTORE, _CB_RESTORE_FENCED)
    return link_source


def build(eng, family, chain, main=None, stats=False, ctx_barrier=False):
    """The inline dispatcher of chain ({'pre': [[plugin, function]], 'post': []})
    over the plugins installed in engine eng, loaded. Refuses a build that left
    a hook call in place: that would not be the variant the figures name.

    ctx_barrier: build it with the generated C patched (CTX_BARRIER_FIX), in
    this process only, for a chain the collection's own build cannot load; the
    figures of such a build are labelled so."""
    started = time.monotonic()
    original = disp_mod.link_source
    if ctx_barrier:
        disp_mod.link_source = _fenced_link_source(original)
    try:
        built = inline_build.prepare_inline(eng.toolchain, eng.layout, family, chain, main, eng.registry.plugins,
                                            stats=stats)
    finally:
        disp_mod.link_source = original
    took = time.monotonic() - started
    if built.calls_left:
        raise RuntimeError("the inline build left calls to %s: not an inline chain" % ", ".join(built.calls_left))
    return InlineDispatcher(load(eng.layout, built.object_path, eng.registry.plugins, built.used), built, took)


def build_or_fenced(eng, family, chain, main=None, stats=False):
    """build(), and when the kernel refuses the collection's own build, the
    same chain with CTX_BARRIER_FIX. Returns (InlineDispatcher, None) or
    (InlineDispatcher built with the fix, the refusal: {error, verifier})."""
    try:
        return build(eng, family, chain, main, stats), None
    except libbpf.BpfError as exc:
        log_lines = (getattr(exc, "log", None) or "").splitlines()
        refusal = {"error": str(exc).splitlines()[0][:300],
                   "verifier": next((line for line in reversed(log_lines) if "disallowed" in line or
                                     "invalid" in line), log_lines[-1] if log_lines else "")}
    return build(eng, family, chain, main, stats, ctx_barrier=True), refusal
