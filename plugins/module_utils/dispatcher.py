# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate the dispatcher program for one chain, build it and load it.

The dispatcher is generated per chain rather than taken from a fixed template with
N slots (libxdp's way): the chain is known when we build, so the program calls
exactly the hooked functions in the solved order, with no slot limit and no
unused stubs on the packet path.

Link mode: the dispatcher's C declares each hook function ``extern``; libbpf's
static linker joins it with the plugins' namespaced objects into one object; the
plugins' maps are bound to their pins before load, so counters survive rebuilds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

from ansible_collections.ebpf.datapath.plugins.module_utils import (
    bpf_btf, bpf_object, dispatcher_stats, libbpf, object_info, plugin_load)
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.faults import crash_point
from ansible_collections.ebpf.datapath.plugins.module_utils.planner import TEMPLATE_VERSION, takes_pkt
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Chain, FunctionRef, fingerprint

DISPATCHER_FUNC = "dp_dispatcher"

# What each program family's program looks like (schema.program_family).
_FAMILIES = {
    "tc": {"section": "tc", "ctx": "struct __sk_buff", "pass": "TC_ACT_OK", "entry_pass": "TC_ACT_OK",
           "touch": "bpf_skb_change_head(ctx, 0, 0)"},
    "xdp": {"section": "xdp", "ctx": "struct xdp_md", "pass": "XDP_PASS", "entry_pass": "XDP_PASS",
            "touch": "bpf_xdp_adjust_head(ctx, 0)"},
    "cilium": {"section": "tc", "ctx": "struct __sk_buff", "pass": None, "entry_pass": "TC_ACT_OK",
               "touch": "bpf_skb_change_head(ctx, 0, 0)"},
}


class DispatcherError(DatapathError):
    """A dispatcher could not be built; the message says what to fix."""


def stub_names(n_pre, n_post, has_main):
    """The stub functions of a freplace-mode dispatcher, one per hooked function."""
    return (["dp_pre_%d" % i for i in range(n_pre)], ["dp_post_%d" % i for i in range(n_post)],
            "dp_main" if has_main else None)


def _stub(shape, name, post=False, main=False, pkt=False):
    """A freplace target: global and noinline so it stays a function the kernel can
    replace. The packet-changing call is never meant to run (every stub of a chain
    is replaced before the dispatcher is attached); it marks the stub as one that
    may change packet data, which the kernel requires of a stub whose extension may."""
    params = _params(shape["ctx"], post, pkt)
    default = shape["pass"] if main else "DP_CONTINUE"
    # A post stub reads its verdict: a parameter the body ignores is one clang
    # may stop passing (the stub is in the same file), and the verifier then
    # refuses the call with an uninitialised argument register.
    return [
        "__attribute__((noinline)) int %s(%s)" % (name, params),
        "{",
        "\tvolatile int ret = %s;" % default,
        "",
        "\tif (!ctx%s)" % (" || !pkt" if pkt else ""),
        "\t\treturn %s;" % ("verdict" if post else "ret"),
        "\t%s;" % shape["touch"],
        "\treturn ret;",
        "}",
        "",
    ]


def _params(ctx, post, pkt):
    """A hook's C parameters: the context, the parsed headers when it takes
    them, the verdict so far at post."""
    params = ["%s *ctx" % ctx] + (["const struct dp_pkt *pkt"] if pkt else []) + (["int verdict"] if post else [])
    return ", ".join(params)


def generate_source(family, pre, post, main=None, label="", stubs=False, entries=(), license=True, final=(),
                    stats=False, parsed=(), cb4=True):
    """Return the dispatcher's C source for a program family (tc, xdp, cilium).

    pre, post: lists of C symbols of hook functions, in chain order.
    main: C symbol of the main function, or None for the default (pass-through,
    or at a Cilium slot the verdict Cilium left in cb[4]).
    stubs: link mode (False) declares the symbols extern, to be resolved by the
    static linker; freplace mode (True) defines them as stubs that extension
    programs replace.
    entries: the symbols (of pre and post) that are entry programs: called with
    the context only, at either hook; their pass verdict (TC_ACT_OK, XDP_PASS)
    and DP_CONTINUE let the packet on, any other verdict ends the chain with it.
    license: False leaves the license to the linked plugin (a trial program).
    final: ("pre" | "post", symbol) of entry programs whose verdict ends the
    chain whatever it is (a hook's verdict: final).
    stats: count each call's verdicts per CPU (dispatcher_stats), in the
    order pre hooks, main, post hooks.
    parsed: the symbols that take the chain's parse (const struct dp_pkt *):
    when there are some, the dispatcher parses the headers once, before the
    first hook (ebpf_datapath.h's dp_parse), and passes them along.
    cb4: at tc, save cb[4], zero it for the chain and restore it on exit (so
    dp_remote_identity() reads 0 outside Cilium). False only when no code of
    the chain can reach cb[4] (plugin_store.reaches_cb4 of every plugin): then
    the handling changes nothing anyone can see, and the program is shorter.
    """
    shape = _FAMILIES[family]
    cb4 = cb4 and family == "tc"
    entries = set(entries)
    final = set(tuple(f) for f in final)
    parsed = set(parsed)
    ctx = shape["ctx"]
    lines = [
        "/* Generated by ebpf.datapath (template %d)%s. Do not edit. */" % (
            TEMPLATE_VERSION, ": " + label if label else ""),
        "#include <linux/bpf.h>",
        "#include <linux/pkt_cls.h>",
        "#include <bpf/bpf_helpers.h>",
    ] + (['#include "ebpf_datapath.h"'] if parsed else []) + [
        "",
        "#define DP_CONTINUE (-1)",
        "#define DP_CB_CILIUM_CUSTOM 4",
        "",
    ]
    declared = set()

    def declare(sym, post=False, main=False):
        if sym in declared:
            return
        declared.add(sym)
        post = post and sym not in entries  # an entry program takes the context only, at either hook
        if stubs:
            lines.extend(_stub(shape, sym, post=post, main=main, pkt=sym in parsed))
        else:
            lines.append("extern int %s(%s);" % (sym, _params(ctx, post, sym in parsed)))

    for sym in pre:
        declare(sym)
    if main:
        declare(main, main=True)
    for sym in post:
        declare(sym, post=True)
    calls = len(pre) + len(post) + (1 if main else 0)
    if stats:
        lines += [""] + dispatcher_stats.c_declarations(calls)
    lines += [
        "",
        'SEC("%s")' % shape["section"],
        "int %s(%s *ctx)" % (DISPATCHER_FUNC, ctx),
        "{",
        "\tint verdict;",
    ]
    if post:
        lines.append("\tint ret;")
    if stats:
        lines += dispatcher_stats.c_lookup(
            "(int)(ctx->cb[DP_CB_CILIUM_CUSTOM] >> 24)" if family == "cilium" else shape["pass"])
    counted = iter(range(calls))

    def count(var):
        return [dispatcher_stats.c_count(next(counted), var)] if stats else []

    def call(sym, verdict=False):
        args = ["ctx"] + (["&dp_pkt"] if sym in parsed else []) + (["verdict"] if verdict else [])
        return "%s(%s)" % (sym, ", ".join(args))

    if parsed:
        lines += ["\tstruct dp_pkt dp_pkt;", "",
                  "\tdp_parse((void *)(long)ctx->data, (void *)(long)ctx->data_end, &dp_pkt);"]
    if cb4:
        # Plugins read the remote identity from cb[4]; outside Cilium it is 0.
        # The word belongs to whoever runs after us, so it is put back on exit.
        lines += ["\t__u32 saved_cb = ctx->cb[DP_CB_CILIUM_CUSTOM];", "",
                  "\tctx->cb[DP_CB_CILIUM_CUSTOM] = 0;"]
    lines.append("")
    for sym in pre:
        if ("pre", sym) in final:
            lines += ["\tverdict = %s;" % call(sym)] + count("verdict") + ["\tgoto out;"]
            continue
        lines += ["\tverdict = %s;" % call(sym)] + count("verdict") + [
            "\tif (verdict != DP_CONTINUE%s)" % (" && verdict != " + shape["entry_pass"] if sym in entries else ""),
            "\t\tgoto out;"]
    if main:
        lines += ["\tverdict = %s;" % call(main)] + count("verdict")
    elif family == "cilium":
        lines.append("\tverdict = (int)(ctx->cb[DP_CB_CILIUM_CUSTOM] >> 24);")
    else:
        lines.append("\tverdict = %s;" % shape["pass"])
    for sym in post:
        if ("post", sym) in final:
            lines += ["\tverdict = %s;" % call(sym)] + count("verdict") + ["\tgoto out;"]
            continue
        if sym in entries:
            lines += ["\tret = %s;" % call(sym)] + count("ret") + [
                "\tif (ret != DP_CONTINUE && ret != %s) {" % shape["entry_pass"]]
        else:
            lines += ["\tret = %s;" % call(sym, verdict=True)] + count("ret") + ["\tif (ret != DP_CONTINUE) {"]
        lines += ["\t\tverdict = ret;", "\t\tgoto out;", "\t}"]
    lines += ["\tgoto out;", "out:"]
    if cb4:
        if parsed:
            # With the parse inlined (mode inline), LLVM keeps ctx + 64 from the
            # save above in a register and stores through it here, which the
            # verifier refuses ("dereference of modified ctx ptr"): make it
            # take ctx as it is now. Costs no instruction.
            lines.append('\tasm volatile("" : "+r"(ctx));')
        lines.append("\tctx->cb[DP_CB_CILIUM_CUSTOM] = saved_cb;")
    lines += ["\treturn verdict;", "}", ""]
    if license:
        lines += ['char LICENSE[] SEC("license") = "GPL";', ""]
    return "\n".join(lines)


def link_symbol(plugin, function):
    """The C symbol of a plugin function in the plugin's link-mode object."""
    symbol = plugin.link_symbols.get(function)
    if symbol is None:
        raise DispatcherError(
            "plugin '%s' has no global function '%s' (it has: %s)" % (
                plugin.name, function, ", ".join(sorted(plugin.link_symbols)) or "none"))
    return symbol


def typed(chain, main):
    """chain and main as records (callers may give their JSON form)."""
    if not isinstance(chain, Chain):
        chain = Chain.from_json(chain)
    if main is not None and not isinstance(main, FunctionRef):
        main = FunctionRef.from_json(main)
    return chain, main


class BuiltDispatcher:
    """A loaded dispatcher program. Close it after the swap (the pins keep it and,
    in freplace mode, its extension links)."""

    def __init__(self, obj, prog, prog_pin, extras=()):
        self.obj = obj
        self.prog = prog
        self.prog_pin = prog_pin
        self.extras = list(extras)  # extension objects and links, freplace mode

    @property
    def fd(self):
        return self.prog.fd

    def close(self):
        for extra in reversed(self.extras):
            extra.close()
        self.extras = []
        if self.obj is not None:
            self.obj.close()
            self.obj = None


def link_source(family, chain, main, plugins, final=(), stats=False, cb4=True):
    """The C of the link-mode dispatcher of a chain (pure). cb4: as
    generate_source's (inline mode passes False for a chain none of whose
    code reaches cb[4])."""
    chain, main = typed(chain, main)
    pre = [link_symbol(plugins[p], f) for p, f in chain.pre]
    post = [link_symbol(plugins[p], f) for p, f in chain.post]
    main_sym = link_symbol(plugins[main.plugin], main.function) if main else None
    entries = set()
    for p, f in list(chain.pre) + list(chain.post) + ([(main.plugin, main.function)] if main else []):
        if f in plugins[p].entries:
            if f not in plugins[p].link_entries:  # the planner refuses this first (check_link_conflicts)
                raise DispatcherError("entry program '%s' of plugin '%s' cannot be linked; use mode: freplace" % (f, p))
            entries.add(link_symbol(plugins[p], f))
    final_syms = [(hook, link_symbol(plugins[p], f)) for hook, p, f in final]
    return generate_source(family, pre, post, main_sym, label="link mode", entries=entries, final=final_syms,
                           stats=stats, parsed=_parsed(chain, main, plugins, lambda p, f: link_symbol(plugins[p], f)),
                           cb4=cb4)


def _parsed(chain, main, plugins, symbol):
    """The symbols (symbol(plugin, function)) of the chain's functions that take
    the chain's parse."""
    refs = list(chain.pre) + list(chain.post) + ([(main.plugin, main.function)] if main else [])
    return set(symbol(p, f) for p, f in refs
               if f not in plugins[p].entries and takes_pkt(plugins[p].functions[f]))


def prepare_link(toolchain, layout, family, chain, main, plugins, final=(), stats=False):
    """Compile the link-mode dispatcher and static-link it with the plugins'
    namespaced objects, touching no kernel state (cached by content).
    Returns (linked object path, names of the plugins it contains)."""
    chain, main = typed(chain, main)
    source = link_source(family, chain, main, plugins, final, stats)
    compiled = _compile_generated(toolchain, source, "dispatcher")
    used = chain.plugins(main)
    return _link(layout, compiled.object_path, compiled.sha256, [plugins[p] for p in used]), used


def _compile_generated(toolchain, source, name, what="the generated dispatcher"):
    """Compile (or take the controller's object of) generated C. A missing
    shipped object is the caller's to hand on (generated.NeedsBuild); any other
    failure is a template bug, not a user error: say so plainly."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.generated import NeedsBuild
    try:
        return toolchain.compile_source_text(source, name)
    except NeedsBuild:
        raise
    except Exception as exc:
        raise DispatcherError("compiling %s failed: %s" % (what, exc))


def build_link(toolchain, layout, name, family, chain, main, plugins, prog_pin, final=(), stats=False):
    """Build, link, load and pin a link-mode dispatcher.

    chain: a schema.Chain (or its JSON form); plugins: schema.Plugin records by name.
    Returns BuiltDispatcher; on any failure nothing stays pinned.
    """
    linked, used = prepare_link(toolchain, layout, family, chain, main, plugins, final, stats)
    crash_point("after_compile")
    return load_joined(layout, linked, used, plugins, prog_pin)


def build_inline(toolchain, layout, name, family, chain, main, plugins, prog_pin, final=(), stats=False):
    """Build, load and pin an inline-mode dispatcher: the chain compiled into
    one program (inline_build.prepare_inline), loaded exactly as a linked one
    (its maps bound to the plugins' pins). InlineError when a plugin cannot be
    inlined; on any failure nothing stays pinned."""
    del name
    from ansible_collections.ebpf.datapath.plugins.module_utils import inline_build
    built = inline_build.prepare_inline(toolchain, layout, family, chain, main, plugins, final, stats)
    crash_point("after_compile")
    return load_joined(layout, built.object_path, built.used, plugins, prog_pin, what="inline")


def open_joined(layout, linked, used, plugins, pin_root):
    """Open, not yet load, an object that contains its plugins' code (link or
    inline mode) as every load of one is prepared: only the dispatcher's
    program (and its plugins' tail-call targets) autoloaded, settings written,
    each map bound to its plugin's pin (but a prog array, which is this
    build's own unless declared pinned by name: _bind_pinned_maps). used names the plugins
    whose maps it binds; pin_root keeps libbpf's default (/sys/fs/bpf) out.
    Close it."""
    # Which pinned map each map of the linked object is.
    map_pins = {}
    for p in used:
        for linked_name, declared in plugins[p].link_maps.items():
            map_pins[linked_name] = layout.plugin_map_pin(p, declared)

    # The linked object's maps carry namespaced names, so libbpf's pin-by-name
    # path would be wrong for all of them: _bind_pinned_maps points each at its
    # plugin's pin.
    obj = bpf_object.BpfObject.open_file(linked, name=DISPATCHER_FUNC, pin_root_path=pin_root)
    try:
        for prog in obj.programs():
            # Programs of the plugins that are no hook here (a plugin's kprobe)
            # are not the dispatcher's to load ...
            if prog.name != DISPATCHER_FUNC:
                prog.set_autoload(False)
        # ... but the tail-call targets of its plugins, which run with the
        # hook that calls them (their globals and settings are this build's).
        plugin_load.prepare_plugin_code(obj, [plugins[p] for p in used], linked=True)
        _bind_pinned_maps(obj, map_pins.get)
    except BaseException:
        obj.close()
        raise
    return obj


def load_joined(layout, linked, used, plugins, prog_pin, what="with its plugins"):
    """Load and pin a dispatcher object that contains its plugins' code (link
    or inline mode): used names the plugins whose maps it binds."""
    obj = open_joined(layout, linked, used, plugins, os.path.dirname(prog_pin))
    try:
        try:
            obj.load()
        except libbpf.BpfError as exc:
            raise DispatcherError(
                "the kernel refused the dispatcher %s: %s" % (what, exc), log=exc.log or "")
        crash_point("after_load")
        prog = obj.program(DISPATCHER_FUNC)
        layout.ensure_bpffs_dir(os.path.dirname(prog_pin))
        if os.path.lexists(prog_pin):
            os.unlink(prog_pin)  # a leftover of a crashed run of the same generation
        prog.pin(prog_pin)
        _pin_stats(obj, prog_pin)
        owners = dict((linked, (p, declared)) for p in used for linked, declared in plugins[p].link_maps.items())
        _pin_own_prog_arrays(layout, obj, os.path.dirname(prog_pin), owners.get)
        return BuiltDispatcher(obj, prog, prog_pin)
    except BaseException:
        obj.close()
        raise


def _pin_stats(obj, prog_pin):
    """Pin the dispatcher's own statistics map (stats: true) beside its program."""
    try:
        stats_map = obj.map(dispatcher_stats.MAP_NAME)
    except KeyError:
        return
    pin = os.path.join(os.path.dirname(prog_pin), dispatcher_stats.PIN_NAME)
    if os.path.lexists(pin):
        os.unlink(pin)  # a leftover of a crashed run of the same generation
    stats_map.pin(pin)


def _pin_own_prog_arrays(layout, obj, gen_dir, owner_of):
    """Pin the prog arrays this build made itself (_bind_pinned_maps) at
    gen_dir/tail/<plugin>/<map>: the kernel empties a prog array once nothing
    in user space holds it (no fd, no pin), so the pin keeps this generation's
    tail calls working while it is kept; releasing the generation unpins it.
    owner_of(map name) -> (plugin, declared map name)."""
    for bpf_map in obj.maps():
        if bpf_map.is_internal or bpf_map.type != libbpf.BPF_MAP_TYPE_PROG_ARRAY or bpf_map.pin_path:
            continue
        plugin, declared = owner_of(bpf_map.name)
        pin = os.path.join(gen_dir, "tail", plugin, declared)
        layout.ensure_bpffs_dir(os.path.dirname(pin))
        if os.path.lexists(pin):
            os.unlink(pin)  # a leftover of a crashed run of the same generation
        bpf_map.pin(pin)


def trial_source(family, record, function, hook, link_object):
    """The C of the throwaway dispatcher that verifies one function of a plugin
    (a chain of just that function), for a plugin whose namespaced object is
    link_object (pure but for reading that object's BTF)."""
    symbol = link_symbol(record, function)
    entry = function in record.entries
    # The static linker refuses two different license sections, so the trial
    # takes the plugin's own ("Dual BSD/GPL" ...) when it has one.
    with bpf_btf.Btf.from_elf(link_object) as btf:
        has_license = any(var.section == "license" for var in btf.variables())
    parsed = [symbol] if not entry and takes_pkt(record.functions[function]) else ()
    return generate_source(family, [symbol] if hook == "pre" else [], [symbol] if hook == "post" else [], None,
                           label="verification of %s.%s" % (record.name, function),
                           entries=[symbol] if entry else (), license=not has_license, parsed=parsed)


def prepare_trial(toolchain, layout, family, record, function, hook, link_object):
    """A throwaway dispatcher that calls one function of a plugin not yet
    stored (install-time verification): trial_source() compiled and linked
    with the plugin's namespaced object at link_object. Returns the linked
    object's path (cached by content)."""
    source = trial_source(family, record, function, hook, link_object)
    compiled = _compile_generated(toolchain, source, "trial", "the verification program")
    return _link_files(layout, [(compiled.object_path, compiled.sha256), (link_object, record.link_sha256)])


def load_trial(path, keep=None, family=None, record=None):
    """Load the throwaway program(s) of an object with fresh maps that are
    never pinned, then close everything. keep: the program to load (default:
    the dispatcher), of family's program type where libbpf knows none;
    record: the plugin whose code it runs (its settings and tail-call targets
    load with it; a trial dispatcher: linked, a program of its own: plain).
    BpfError carries the verifier's log."""
    linked = keep is None
    keep = keep or DISPATCHER_FUNC
    with bpf_object.BpfObject.open_file(path, name="dp_trial") as obj:
        for prog in obj.programs():
            if prog.name != keep:
                prog.set_autoload(False)
            elif family and prog.type == libbpf.BPF_PROG_TYPE_UNSPEC:
                prog.set_type(object_info.PROG_TYPES[family])
        if record is not None:
            plugin_load.prepare_plugin_code(obj, [record], linked=linked)
        for bpf_map in obj.maps():
            if bpf_map.pin_path:
                bpf_map.set_pin_path(None)  # a pin-by-name map: a trial pins nothing
        obj.load()


def _bind_pinned_maps(obj, pin_of):
    """Before load, make each (non-internal) map of obj the plugin's pinned map,
    so every build shares the plugins' state. pin_of(map name) -> pin path.

    Not a prog array (unless declared pinned by name): libbpf makes it new
    with this build and fills it from its ``.values`` initialiser with the
    tail-call targets loaded beside the code that calls them (and
    _pin_own_prog_arrays pins it with the generation), so the swap changes the
    chain and its targets in one operation, and a kept generation (a rollback)
    keeps its own. A prog array that something outside the plugin fills must
    be declared pinned by name: that one is shared like any other map."""
    for bpf_map in obj.maps():
        if bpf_map.is_internal or bpf_map.name == dispatcher_stats.MAP_NAME:
            continue  # the dispatcher's own: made new with each generation
        pin = pin_of(bpf_map.name)
        if pin is None:
            raise DispatcherError("map '%s' of the linked dispatcher belongs to no plugin" % bpf_map.name)
        if bpf_map.type == libbpf.BPF_MAP_TYPE_PROG_ARRAY and not bpf_map.pin_path:
            continue  # this build's own, see above
        try:
            fd = libbpf.obj_get(pin)
        except libbpf.BpfError as exc:
            raise DispatcherError("pinned map %s is missing (%s); re-apply the plugin with "
                                  "ebpf.datapath.datapath_plugin" % (pin, exc))
        try:
            bpf_map.reuse_fd(fd)
        finally:
            libbpf.close_fd(fd)
        if bpf_map.pin_path:
            # Declared pinned by name: libbpf looks for the pin at load and
            # pins the map there when none is found; make that the plugin's pin.
            bpf_map.set_pin_path(pin)


def _link(layout, dispatcher_obj, dispatcher_sha, plugin_records):
    """Static-link the dispatcher with the plugins' namespaced objects."""
    return _link_files(layout, [(dispatcher_obj, dispatcher_sha)] +
                       [(layout.object_path(r.link_sha256), r.link_sha256) for r in plugin_records])


def _link_files(layout, files):
    """Static-link objects given as (path, sha256); cached by content."""
    key = fingerprint({"objects": [sha for _path, sha in files]})
    out_dir = os.path.join(layout.cache_dir, "linked")
    out = os.path.join(out_dir, key + ".o")
    if os.path.exists(out):
        return out
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".o", dir=out_dir)
    os.close(fd)
    try:
        with bpf_object.Linker(tmp) as linker:
            for path, _sha in files:
                linker.add_file(path)
            linker.finalize()
        os.rename(tmp, out)
    except libbpf.BpfError as exc:
        raise DispatcherError("linking %s failed: %s" % (", ".join(os.path.basename(path) for path, _sha in files), exc),
                              log=exc.log or "")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _freplace_bindings(chain, main, plugins):
    """(plugin, function, stub, is_post) for every stub of a freplace-mode
    dispatcher, and the stub names (pre, post, main)."""
    pre_stubs, post_stubs, main_stub = stub_names(len(chain.pre), len(chain.post), bool(main))
    bindings = [(p, f, stub, False) for (p, f), stub in zip(chain.pre, pre_stubs)]
    if main:
        bindings.append((main.plugin, main.function, main_stub, False))
    bindings += [(p, f, stub, True) for (p, f), stub in zip(chain.post, post_stubs)]
    return bindings, (pre_stubs, post_stubs, main_stub)


def freplace_sources(family, chain, main, plugins, final=(), stats=False):
    """The C of a freplace-mode dispatcher (its stubs) and, per plugin, of its
    extension wrappers (pure). Returns (dispatcher C, [(plugin, bindings,
    wrapper C)])."""
    chain, main = typed(chain, main)
    bindings, (pre_stubs, post_stubs, main_stub) = _freplace_bindings(chain, main, plugins)
    # An entry program replaces its stub itself (it is a program already), so
    # its stub takes the context only and the dispatcher maps its verdict.
    entry_stubs = [stub for p, f, stub, _post in bindings if f in plugins[p].entries]
    final = set(tuple(f) for f in final)
    final_stubs = [("post" if post else "pre", stub) for p, f, stub, post in bindings
                   if stub != main_stub and ("post" if post else "pre", p, f) in final]
    stub_of = dict(((p, f), stub) for p, f, stub, _post in bindings)
    source = generate_source(family, pre_stubs, post_stubs, main_stub, label="freplace mode", stubs=True,
                             entries=entry_stubs, final=final_stubs, stats=stats,
                             parsed=_parsed(chain, main, plugins, lambda p, f: stub_of[(p, f)]))
    wrappers = []
    for plugin in sorted(set(b[0] for b in bindings)):
        mine = [b for b in bindings if b[0] == plugin]
        parsed = set(f for f, func in plugins[plugin].functions.items() if takes_pkt(func))
        wrappers.append((plugin, mine, extension_source(family, mine, plugins[plugin].entries, parsed)))
    return source, wrappers


def prepare_freplace(toolchain, layout, family, chain, main, plugins, final=(), stats=False):
    """Compile and link everything a freplace-mode dispatcher needs, touching no
    kernel state: the stub dispatcher and, per plugin, its extension object.

    Returns (dispatcher object path, [(plugin record, bindings, extension object
    path)]). All of it is cached by content, so a host whose kernel refuses EXT
    programs can still prepare (and test) the objects another kernel will load.
    """
    source, wrappers = freplace_sources(family, chain, main, plugins, final, stats)
    compiled = _compile_generated(toolchain, source, "dispatcher_freplace")
    extensions = []
    for plugin, mine, wrapper_source in wrappers:
        extensions.append((plugins[plugin], mine, _extension_object(toolchain, layout, plugins[plugin], wrapper_source)))
    return compiled.object_path, extensions


def generated_sources(inputs, plugins):
    """Every generated C a build of inputs (a plan's build) compiles, as
    [(name, text)]: what a host that cannot compile needs from the controller
    before it changes anything (pure)."""
    chain = Chain(inputs["pre"], inputs["post"])
    main = FunctionRef(*inputs["main"]) if inputs.get("main") else None
    final = inputs.get("final", [])
    stats = inputs.get("stats", False)
    if inputs["mode"] == "freplace":
        source, wrappers = freplace_sources(inputs["kind"], chain, main, plugins, final, stats)
        return [("dispatcher_freplace", source)] + [("freplace_wrappers", text) for _p, _b, text in wrappers]
    if inputs["mode"] == "inline":
        return []  # compiled to bitcode with the plugins' sources, on the host (never shipped)
    return [("dispatcher", link_source(inputs["kind"], chain, main, plugins, final, stats))]


def build_freplace(toolchain, layout, name, family, chain, main, plugins, prog_pin, final=(), stats=False):
    """Build, load and pin a freplace-mode dispatcher: a program with one stub per
    hooked function, each stub replaced by an extension (BPF_PROG_TYPE_EXT)
    program made from the plugin's own plain object, its maps the pinned ones.

    The extension links are pinned under the generation's ext/ directory: they
    hold the extensions in place, and the dispatcher keeps them (and they it)
    alive until the generation is released. Nothing is attached to the attach
    point here. On any failure everything made so far is closed; the caller
    removes the generation's directory.
    """
    dispatcher_obj, extensions = prepare_freplace(toolchain, layout, family, chain, main, plugins, final, stats)
    crash_point("after_compile")
    obj = bpf_object.BpfObject.open_file(dispatcher_obj, name=DISPATCHER_FUNC)
    built = BuiltDispatcher(obj, None, prog_pin)
    try:
        try:
            obj.load()
        except libbpf.BpfError as exc:
            raise DispatcherError("the kernel refused the freplace dispatcher: %s" % exc, log=exc.log or "")
        crash_point("after_load")
        built.prog = obj.program(DISPATCHER_FUNC)
        layout.ensure_bpffs_dir(os.path.dirname(prog_pin))
        if os.path.lexists(prog_pin):
            os.unlink(prog_pin)
        built.prog.pin(prog_pin)
        _pin_stats(obj, prog_pin)
        ext_dir = os.path.join(os.path.dirname(prog_pin), "ext")
        layout.ensure_bpffs_dir(ext_dir)
        for record, bindings, ext_obj in extensions:
            _load_extensions(layout, record, bindings, ext_obj, built, ext_dir)
        return built
    except BaseException:
        built.close()
        raise


def extension_source(family, bindings, entries=(), parsed=()):
    """The C of a plugin's freplace wrappers: one SEC("freplace/<stub>") program
    per hooked function, calling it. bindings: (plugin, function, stub, is_post).
    Entry programs (functions named in entries) get no wrapper: they are loaded
    as the extension themselves (libbpf calls only into .text functions).
    parsed: the functions that take the chain's parse (const struct dp_pkt *)."""
    ctx = _FAMILIES[family]["ctx"]
    lines = ["/* Generated by ebpf.datapath: freplace wrappers of one plugin. Do not edit. */",
             "#include <linux/bpf.h>", "#include <bpf/bpf_helpers.h>"]
    bindings = [b for b in bindings if b[1] not in entries]
    if any(b[1] in parsed for b in bindings):
        lines.append('#include "ebpf_datapath.h"')
    lines.append("")
    declared = set()
    for _plugin, function, stub, post in bindings:
        if function not in declared:
            lines.append("extern int %s(%s);" % (function, _params(ctx, post, function in parsed)))
            declared.add(function)
    for _plugin, function, stub, post in bindings:
        pkt = function in parsed
        args = ", ".join(["ctx"] + (["pkt"] if pkt else []) + (["verdict"] if post else []))
        # The stub's pointer argument may be NULL to the verifier: check it
        # before handing it to the plugin's function.
        guard = ["\tif (!pkt)", "\t\treturn %s;" % ("verdict" if post else "-1")] if pkt else []
        lines += ["", 'SEC("freplace/%s")' % stub, "int dp_ext_%s(%s)" % (stub[3:], _params(ctx, post, pkt)), "{"] + \
            guard + ["\treturn %s(%s);" % (function, args), "}"]
    return "\n".join(lines) + "\n"


def _extension_object(toolchain, layout, record, wrapper_source):
    """A plugin's extension object: its wrappers (extension_source) linked with
    the plugin's plain object."""
    wrapper = _compile_generated(toolchain, wrapper_source, "freplace_wrappers",
                                 "the extension wrappers of plugin '%s'" % record.name)
    return _link_files(layout, [(wrapper.object_path, wrapper.sha256),
                                (layout.object_path(record.plain_sha256), record.plain_sha256)])


def _load_extensions(layout, record, bindings, linked, built, ext_dir):
    """Load one plugin's hooked functions as extensions of the dispatcher's stubs."""
    ext = bpf_object.BpfObject.open_file(linked, name="ext_" + record.name,
                                         pin_root_path=layout.plugin_maps_dir(record.name))
    built.extras.append(ext)
    target_fd = built.prog.fd
    wanted = {}  # program name in the extension object -> the stub it replaces
    for _plugin, function, stub, _post in bindings:
        prog_name = function if function in record.entries else "dp_ext_%s" % stub[3:]
        if prog_name in wanted:
            raise DispatcherError("entry program '%s' of plugin '%s' is hooked twice in one chain; in freplace mode "
                                  "a program replaces one stub" % (function, record.name))
        wanted[prog_name] = stub
    for prog in ext.programs():
        if prog.name in wanted:
            if prog.name in record.entries:
                # The program itself becomes the extension; its section's
                # attach type (BPF_XDP for SEC("xdp")) is refused on an EXT program.
                prog.set_type(libbpf.BPF_PROG_TYPE_EXT)
                prog.set_expected_attach_type(0)
            prog.set_attach_target(target_fd, wanted[prog.name])
        else:
            prog.set_autoload(False)  # a prebuilt object's own programs
    plugin_load.prepare_plugin_code(ext, [record], linked=False)  # settings, tail-call targets
    _bind_pinned_maps(ext, lambda name: layout.plugin_map_pin(record.name, name))
    try:
        ext.load()
    except libbpf.BpfError as exc:
        raise DispatcherError("the kernel refused plugin '%s' as an extension of the dispatcher: %s"
                              % (record.name, exc), log=exc.log or "")
    _pin_own_prog_arrays(layout, ext, os.path.dirname(ext_dir), lambda name: (record.name, name))
    for prog_name, stub in sorted(wanted.items()):
        try:
            link = ext.program(prog_name).attach_freplace(target_fd, stub)
        except libbpf.BpfError as exc:
            raise DispatcherError("attaching plugin '%s' to stub %s failed: %s" % (record.name, stub, exc))
        built.extras.append(link)
        link.pin(os.path.join(ext_dir, stub))


def build(inputs, plugins, toolchain, layout, name, prog_pin):
    """Build here the dispatcher a plan asks for: inputs is the plan's build
    (planner.build_inputs: family, chain, main, mode, object digests), plugins
    the schema.Plugin records it names. What to build is decided by the
    planner; this is one way to build it (on the target)."""
    chain = Chain(inputs["pre"], inputs["post"])
    main = FunctionRef(*inputs["main"]) if inputs.get("main") else None
    final = inputs.get("final", [])
    stats = inputs.get("stats", False)
    if inputs["mode"] == "freplace":
        return build_freplace(toolchain, layout, name, inputs["kind"], chain, main, plugins, prog_pin, final, stats)
    if inputs["mode"] == "inline":
        return build_inline(toolchain, layout, name, inputs["kind"], chain, main, plugins, prog_pin, final, stats)
    return build_link(toolchain, layout, name, inputs["kind"], chain, main, plugins, prog_pin, final, stats)
