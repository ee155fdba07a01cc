# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build half of inline mode: one BPF object in which the dispatcher's
calls to its plugins' functions are inlined, so a plugin costs no call.

Link mode joins compiled objects, and the static linker cannot inline: every
hooked function stays a BPF-to-BPF call. Inline mode joins the plugins one step
earlier, as LLVM bitcode, and lets LLVM inline and optimise the whole chain:

1. each hooked plugin's source is compiled to bitcode with exactly the flags of
   its objects and the renames of its namespaced object (``dpp_<plugin>__<sym>``
   for every global, taken from the BTF of its installed plain object; entry
   programs moved to .text as plugin_store does), plus its license variable
   renamed (two modules may not both define ``LICENSE``). It is compiled only
   when that source, its headers and clang still give the installed plain
   object byte for byte: inline mode never runs code other than what was
   verified at install;
2. the C the link mode generates for the chain (dispatcher.link_source) is
   compiled to bitcode too, unoptimised (step 3 optimises it once, with the
   hooks inlined); at tc it leaves skb->cb[4] alone when no plugin's code
   can reach that word (chain_reaches_cb4);
3. Toolchain.join_bitcode links the modules (llvm-link, dispatcher first),
   makes the hooked functions internal and always-inline (opt's forceattrs and
   internalize, every other symbol keeps its name and linkage), optimises the
   whole module at -O2 and generates one object (llc).

Maps, settings and tail-call targets keep their namespaced names, so the
object is loaded exactly as the linked dispatcher is (its maps bound to the
plugins' pins, plugin_load.prepare_plugin_code). All of it is cached by
content: a rerun starts neither clang nor an LLVM tool.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections

from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf, dispatcher, object_info, plugin_store
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.naming import plugin_symbol
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import ToolchainError

# The BPF ISA every compile asks for (toolchain.BASE_CFLAGS), and the ones a
# plugin's cflags may ask for instead, oldest first.
DEFAULT_CPU = "v3"
_CPUS = ("v1", "v2", "v3", "v4")
# Sections of globals that plugin_store does not rename for the static linker
# (which merges them); two bitcode modules may not both define them.
_MERGED_SECTIONS = ("license", "version")

# llc's words when a jump of the joined program is longer than the cpu's
# jumps reach (16-bit offsets before v4).
_BRANCH_OUT_OF_RANGE = "Branch target out of insn range"

InlineBuild = collections.namedtuple("InlineBuild", ["object_path", "sha256", "cached", "used", "calls_left"])
InlineBuild.__doc__ = """The inline object of a chain: its path in the compile
cache and sha256, whether it came from the cache, the plugins it contains
(sorted) and the hooked symbols that are still functions of their own
(LLVM could not inline every call to them; empty when the build did what it
is for)."""


class InlineError(DatapathError):
    """A chain cannot be built inline; the message names the plugin and says
    what to do."""


def check_sources(plugins, used):
    """Refuse plugins installed from an object: inline mode compiles each
    hooked plugin from its source. Names all of them at once."""
    prebuilt = [name for name in used if "src" not in plugins[name].source]
    if prebuilt:
        described = ", ".join("'%s' (object %s)" % (name, plugins[name].source.get("object", "?"))
                              for name in prebuilt)
        raise InlineError("inline mode compiles every hooked plugin from its C source, and %s %s installed from "
                          "a prebuilt object only: install %s with src, or use mode: link"
                          % (described, "was" if len(prebuilt) == 1 else "were",
                             "it" if len(prebuilt) == 1 else "them"))


def inline_symbols(chain, main, plugins):
    """The link-mode symbols of every hooked function and of main: what the
    dispatcher calls, and what is inlined (sorted, once each)."""
    refs = list(chain.pre) + list(chain.post) + ([(main.plugin, main.function)] if main else [])
    return sorted(set(dispatcher.link_symbol(plugins[p], f) for p, f in refs))


def cpu_of(cflags, default=DEFAULT_CPU):
    """The BPF ISA a compile with these cflags generates: the last -mcpu=."""
    cpu = default
    for flag in cflags:
        if flag.startswith("-mcpu="):
            cpu = flag[len("-mcpu="):]
    return cpu


def chain_cpu(plugins, used):
    """The one BPF ISA of an inline chain. LLVM inlines a function only into a
    caller compiled for the same cpu, so the plugins must agree (the
    dispatcher is compiled for theirs); a disagreement is refused naming them."""
    cpus = dict((name, cpu_of(plugins[name].cflags)) for name in used)
    distinct = sorted(set(cpus.values()))
    if len(distinct) > 1:
        listed = ", ".join("'%s' %s" % (name, cpus[name]) for name in sorted(cpus))
        raise InlineError("inline mode makes one program of the chain, and its plugins are compiled for different "
                          "BPF cpus (-mcpu=): %s; give them the same -mcpu= in cflags, or use mode: link" % listed)
    return distinct[0] if distinct else DEFAULT_CPU


def bitcode_defines(name, info, merged_vars, moved_entries):
    """The -D renames of a plugin's bitcode compile: those of its namespaced
    object (every global, the entry programs it moves to .text) and its
    license/version variables (pure). info: object_info.inspect_object()."""
    defines = dict((sym, plugin_symbol(name, sym)) for sym in info["globals"])
    for var in merged_vars:
        defines[var] = plugin_symbol(name, var)
    for fn in moved_entries:
        as_function = plugin_store._as_function  # pylint: disable=protected-access
        defines[fn] = as_function(plugin_symbol(name, fn), info["functions"][fn]["ret"])
    return defines


def merged_variables(object_path):
    """The global variables of an object in its license and version sections."""
    with bpf_btf.Btf.from_elf(object_path) as btf:
        return sorted(set(v.name for v in btf.variables() if v.section in _MERGED_SECTIONS and v.linkage == "global"))


def check_license(toolchain, name, object_path):
    """Refuse a plugin whose license the kernel would not take as GPL: in one
    program the kernel reads one license string, so a plugin under another
    license cannot join a GPL dispatcher (link mode's linker refuses it too).
    llvm-objcopy reads the section (plugin_store.license_of)."""
    compatible = plugin_store._GPL_COMPATIBLE  # pylint: disable=protected-access
    text = plugin_store.license_of(toolchain, object_path)
    if text is None:
        return  # none of its own: it runs under the dispatcher's
    if text not in compatible:
        raise InlineError("plugin '%s' is licensed %r, which the kernel does not take as GPL-compatible; inline mode "
                          "compiles it into the dispatcher's GPL program: use mode: link or freplace"
                          % (name, text.decode("utf-8", "replace")))


def plugin_bitcode(toolchain, layout, record):
    """The bitcode of a source plugin (toolchain.CompileResult, cached).

    Compiled only when the recorded source, the headers it includes and clang
    still produce the installed plain object: otherwise the object the
    verifier checked at install and the code inlined would differ, so the
    plugin has to be installed again."""
    check_sources({record.name: record}, [record.name])
    src = record.source["src"]
    plain = layout.object_path(record.plain_sha256)
    try:
        current = toolchain.compile(src, cflags=list(record.cflags), include_dirs=list(record.include_dirs))
    except ToolchainError as exc:
        raise InlineError("plugin '%s': its source %s no longer compiles (%s); install it again"
                          % (record.name, src, exc), log=exc.log or "")
    if current.sha256 != record.plain_sha256:
        raise InlineError("plugin '%s': %s (or a header it includes, or clang) changed since the plugin was installed, "
                          "so its code is no longer the verified one; install the plugin again (datapath_plugin)"
                          % (record.name, src))
    check_license(toolchain, record.name, plain)
    info = object_info.inspect_object(plain)
    defines = bitcode_defines(record.name, info, merged_variables(plain), record.link_entries)
    try:
        return toolchain.compile(src, cflags=list(record.cflags), include_dirs=list(record.include_dirs),
                                 defines=defines, bitcode=True)
    except ToolchainError as exc:
        raise InlineError("plugin '%s': compiling %s to bitcode with its globals renamed failed: %s"
                          % (record.name, src, exc), log=exc.log or "")


def prepare_inline(toolchain, layout, family, chain, main, plugins, final=(), stats=False):
    """Compile the chain inline into one object, touching no kernel state
    (cached by content; the counterpart of dispatcher.prepare_link, whose
    arguments it takes: the dispatcher's C is link_source's). toolchain:
    a toolchain.Toolchain (or a generated.Builder that compiles on this host).
    Returns InlineBuild. Raises InlineError for a plugin that cannot be inlined
    (no source, changed since install, another license or cpu), and
    dispatcher.DispatcherError when a step fails (clang's or LLVM's message)."""
    toolchain = getattr(toolchain, "toolchain", toolchain)  # a Builder's own Toolchain
    chain, main = dispatcher.typed(chain, main)
    used = chain.plugins(main)
    check_sources(plugins, used)
    cpu = chain_cpu(plugins, used)
    source = dispatcher.link_source(family, chain, main, plugins, final, stats,
                                    cb4=family != "tc" or chain_reaches_cb4(toolchain, layout, plugins, used))
    symbols = inline_symbols(chain, main, plugins)
    parts = []
    try:
        # Unoptimised: its code is optimised once, with the hooks inlined
        # (compiled alone at -O2, the parse is shaped for a dp_pkt that
        # escapes to the calls, and the join's -O2 does not undo all of it).
        head = toolchain.compile_source_text(source, "dispatcher", cflags=["-mcpu=" + cpu], bitcode=True,
                                             unoptimized=True)
    except ToolchainError as exc:
        # The template's bug, not the user's (as dispatcher._compile_generated says).
        raise dispatcher.DispatcherError("compiling the generated dispatcher to bitcode failed: %s" % exc)
    parts.append((head.object_path, head.sha256))
    for name in used:
        compiled = plugin_bitcode(toolchain, layout, plugins[name])
        parts.append((compiled.object_path, compiled.sha256))
    try:
        joined = toolchain.join_bitcode(parts, inline=symbols, cpu=cpu)
    except ToolchainError as exc:
        if _BRANCH_OUT_OF_RANGE in str(exc):
            raise InlineError(
                "the chain (%d hooked functions) is too long to inline: as one program it is longer than a BPF "
                "jump can span at -mcpu=%s (32767 instructions from its first hook to its exit); use mode: link, "
                "a shorter chain, or -mcpu=v4 in the cflags of every hooked plugin (kernels 6.6 and newer: llc "
                "then uses long jumps)" % (len(symbols), cpu), log=exc.log or "")
        raise dispatcher.DispatcherError("building the chain inline failed: %s" % exc, log=exc.log or "")
    return InlineBuild(joined.object_path, joined.sha256, joined.cached, used,
                       functions_left(joined.object_path, symbols))


def chain_reaches_cb4(toolchain, layout, plugins, used):
    """Whether the code of any plugin of the chain may reach skb->cb[4]
    (plugin_store.reaches_cb4 of its installed plain object, the object its
    inlined code was checked to be). When none can, the tc dispatcher leaves
    cb[4] alone: zeroing it for the chain and putting it back is then seen by
    no one."""
    return any(plugin_store.reaches_cb4(toolchain, layout.object_path(plugins[name].plain_sha256),
                                        plugins[name].plain_sha256) for name in used)


def functions_left(object_path, symbols):
    """The symbols that are still functions in the object (its BTF). A hooked
    function made internal and inlined everywhere is deleted by LLVM; one that
    is left is still called."""
    with bpf_btf.Btf.from_elf(object_path) as btf:
        names = set(func.name for func in btf.functions())
    return sorted(s for s in symbols if s in names)
