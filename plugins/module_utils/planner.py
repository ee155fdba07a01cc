# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The planner: what a request would change, computed without touching anything.

Input: the recorded records (schema.Dispatcher, schema.Plugin), the request
(schema.DispatcherRequest) and the kernel facts the engine gathered before
planning (``KernelFacts``). Output: a ``Plan``: changed or not, the solved
chain, the generation number, before/after text for --diff, the build inputs
(what to build, separable from building it: a controller can build from the
same plan), the attachment to swap from, and what to release afterwards.

Nothing here opens a file, a socket or a BPF object; every function is pure,
so check mode returns the plan and the unit tests need no root.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.ebpf.datapath.plugins.module_utils import chain as chain_mod
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import (
    Chain, Dispatcher, Generation, Record, fingerprint, program_family)

# Bump when the generated C changes shape, so recorded fingerprints stop matching
# and every dispatcher is rebuilt once with the new template.
TEMPLATE_VERSION = 1

# Context types a hook function may take, per program family.
CTX_TYPES = {"tc": "struct __sk_buff *", "cilium": "struct __sk_buff *", "xdp": "struct xdp_md *"}
# The optional second parameter of a hook function: the chain's one parse (ebpf_datapath.h).
PKT_TYPE = "struct dp_pkt *"


def takes_pkt(func):
    """Whether a hook function (its BTF record: params) takes the parsed headers."""
    params = [t.replace("const ", "") for t in func["params"]]
    return len(params) > 1 and params[1] == PKT_TYPE


class KernelFacts(Record):
    """What the kernel runs at a dispatcher's recorded attach point, gathered by
    the engine (read-only) before planning.

    running_prog_id  the program our recorded attachment holds now; None when
                     there is no attachment or it is gone (reboot, detached)
    adoptable        the attachment holding the write-ahead (pending) program
                     of a run killed after its swap, found by program id; None
    current_pinned   the running generation's program is still pinned
    freplace         whether the kernel loads BPF_PROG_TYPE_EXT programs (None: not asked)
    freplace_reason  why not, when it does not
    inline           whether this host can build the request's plugins inline: every
                     one installed from source, compiled here (None: not asked)
    inline_reason    why not, when it cannot
    """

    FIELDS = ("running_prog_id", "adoptable", "current_pinned", "freplace", "freplace_reason", "inline",
              "inline_reason")

    def __init__(self, running_prog_id=None, adoptable=None, current_pinned=False, freplace=None,
                 freplace_reason="", inline=None, inline_reason=""):
        self.running_prog_id = running_prog_id
        self.adoptable = adoptable
        self.current_pinned = current_pinned
        self.freplace = freplace
        self.freplace_reason = freplace_reason
        self.inline = inline
        self.inline_reason = inline_reason


class Plan(Record):
    """What converging one dispatcher would do.

    changed          False: the kernel runs the request already (record_request
                     may still say the request's bookkeeping changed)
    chain, mode      the solved chain and the effective mode
    generation       the number the new generation gets (or the running one's)
    build            the build inputs (schema.Generation.build), None if nothing to build
    fingerprint      their fingerprint
    base_attachment  the attachment to swap from; None: attach anew
    running_prog_id  the program base_attachment runs now
    adopt            an attachment found holding the pending program (recorded on apply)
    move_from        the attachment at the old attach point, released after the new one runs
    release          generation numbers to unpin once the new one runs
    """

    FIELDS = ("name", "changed", "request", "chain", "mode", "generation", "build", "fingerprint", "before",
              "after", "base_attachment", "running_prog_id", "adopt", "move_from", "release", "warnings",
              "record_request", "prog_id", "mode_reason", "inline_refused")

    def __init__(self, name, changed, request, chain, mode, generation, before, after, build=None,
                 fingerprint=None, base_attachment=None, running_prog_id=None, adopt=None, move_from=None,
                 release=(), warnings=(), record_request=False, prog_id=None, mode_reason="", inline_refused=None):
        self.name = name
        self.changed = changed
        self.request = request
        self.chain = chain
        self.mode = mode
        self.generation = generation
        self.build = build
        self.fingerprint = fingerprint
        self.before = before
        self.after = after
        self.base_attachment = base_attachment
        self.running_prog_id = running_prog_id
        self.adopt = adopt
        self.move_from = move_from
        self.release = list(release)
        self.warnings = list(warnings)
        self.record_request = record_request
        self.prog_id = prog_id
        self.mode_reason = mode_reason  # why mode auto picked what it picked
        self.inline_refused = inline_refused  # recorded with the dispatcher (schema.Dispatcher.inline_refused)

    def result(self):
        """The answer a module reports."""
        out = {"changed": self.changed, "before": self.before, "after": self.after,
               "generation": self.generation, "mode": self.mode, "chain": self.chain.to_json(),
               "prog_id": self.prog_id}
        if self.mode_reason:
            out["mode_reason"] = self.mode_reason
        return out


# -------------------------------------------------------------- describing

def describe(name, request, mode, chain, generation):
    """The human form of a dispatcher's chain, used in --diff and messages."""
    if request is None:
        return ""
    where = request.attach
    if request.interface:
        where += " on %s" % request.interface
    if request.netns:
        where += " in netns %s" % request.netns
    if request.endpoint is not None:
        where += " endpoint %s %s" % (request.endpoint, request.custom_hook)
    main = request.main
    main_text = "%s.%s" % (main.plugin, main.function) if main else (
        "cilium verdict" if request.attach == "cilium_custom" else "pass")
    lines = [
        "dispatcher %s (%s, %s mode, generation %s)" % (name, where, mode or request.mode, generation),
        "  pre:  " + (" -> ".join("%s.%s" % tuple(x) for x in chain.pre) or "(none)"),
        "  main: " + main_text,
        "  post: " + (" -> ".join("%s.%s" % tuple(x) for x in chain.post) or "(none)"),
    ]
    return "\n".join(lines) + "\n"


def describe_dispatcher(disp):
    """describe() of a recorded dispatcher as it runs now."""
    if disp is None:
        return ""
    return describe(disp.name, disp.request, disp.mode_effective, disp.chain, disp.generation)


# ------------------------------------------------------------------ solving

def resolve_mode(requested, facts, inline_refused=""):
    """auto -> inline where every plugin has source here (and the same inline
    build was not refused before: inline_refused says why), else freplace where
    the kernel loads EXT programs, else link."""
    return resolve_mode_why(requested, facts, inline_refused)[0]


def resolve_mode_why(requested, facts, inline_refused=""):
    """(mode, why auto picked it: "" for an explicit mode)."""
    if requested == "link":
        return "link", ""
    if requested == "inline":
        if not facts.inline:
            raise DatapathError("mode inline cannot be built here: %s; use mode: link or mode: auto"
                                % facts.inline_reason)
        return "inline", ""
    if requested == "auto":
        if facts.inline and not inline_refused:
            return "inline", "inline: every plugin of the chain has source, compiled on this host"
        why_not = inline_refused or facts.inline_reason or "not asked"
        if facts.freplace:
            return "freplace", "freplace: not inline (%s); the kernel loads extension programs" % why_not
        return "link", "link: not inline (%s); not freplace (%s)" % (why_not, facts.freplace_reason or "not asked")
    if not facts.freplace:
        raise DatapathError(
            "mode freplace needs BPF_PROG_TYPE_EXT programs, and this kernel refuses them (%s); "
            "use mode: link (works on this kernel) or mode: auto" % facts.freplace_reason)
    return "freplace", ""


def check_hook_signature(plugin, function, hook, family):
    """Refuse a function whose parameters do not fit the hook it is bound to."""
    func = plugin.functions.get(function)
    if func is None:
        raise DatapathError("plugin '%s' has no global function '%s' (it has: %s)"
                            % (plugin.name, function, ", ".join(sorted(plugin.functions)) or "none"))
    entry = plugin.entries.get(function)
    if entry is not None:
        check_entry_family(plugin, function, entry, family)
        # An entry program takes the context only, at either hook.
        want, rets = [CTX_TYPES[family]], _ENTRY_RETS
    else:
        want, rets = [CTX_TYPES[family]] + (["int"] if hook == "post" else []), ("int", "__s32", "s32")
        if takes_pkt(func):
            want.insert(1, PKT_TYPE)
    have = [t.replace("const ", "") for t in func["params"]]
    if have != want or func.get("ret") not in rets:
        raise DatapathError(
            "function '%s' of plugin '%s' has signature %s (%s); a %s hook at this attach point needs "
            "int %s(%s)" % (function, plugin.name, func.get("ret"), ", ".join(func["params"]) or "void",
                            hook, function, ", ".join(want)))


_ENTRY_RETS = ("int", "__s32", "s32", "__u32", "u32", "unsigned int")


def check_entry_family(plugin, function, entry, family):
    """An entry program runs where its section says: a tc program at tc ingress,
    egress or a Cilium slot, an XDP program at xdp."""
    wanted = "xdp" if family == "xdp" else "tc"
    if entry.get("family") != wanted:
        raise DatapathError(
            "function '%s' of plugin '%s' is the program SEC(\"%s\"), which cannot run at a%s %s attach point"
            % (function, plugin.name, entry.get("section"), "n" if wanted == "xdp" else "", wanted))


def solve(name, request, plugins):
    """(Chain, warnings) of a request: every hooked function exists and fits
    its hook, and the constraints order them."""
    family = program_family(request.attach)
    for hook in request.hooks:
        plugin = plugins.get(hook.plugin)
        if plugin is None:
            raise DatapathError(
                "hook %s.%s at dispatcher '%s' names unknown plugin '%s'; add it with "
                "ebpf.datapath.datapath_plugin" % (hook.plugin, hook.function, name, hook.plugin))
        check_hook_signature(plugin, hook.function, hook.hook, family)
        if hook.verdict == "final" and hook.function not in plugin.entries:
            raise DatapathError(
                "hook %s.%s at dispatcher '%s': verdict final applies to entry programs (SEC(\"tc\"), SEC(\"xdp\") ...); "
                "a hook function ends the chain by returning anything but -1" % (hook.plugin, hook.function, name))
    main = request.main
    if main is not None:
        plugin = plugins.get(main.plugin)
        if plugin is None:
            raise DatapathError("main of dispatcher '%s' names unknown plugin '%s'" % (name, main.plugin))
        try:
            check_hook_signature(plugin, main.function, "pre", family)
        except DatapathError as exc:
            raise DatapathError("main: %s" % exc)
    try:
        solved = chain_mod.solve_dispatcher([h.to_json() for h in request.hooks], strict=request.strict_constraints)
    except chain_mod.ChainError as exc:
        raise DatapathError("dispatcher '%s': %s" % (name, exc))
    return Chain(solved["pre"], solved["post"]), list(solved.get("warnings", []))


def check_link_conflicts(request, chain, plugins):
    """Prebuilt objects keep their symbol names; two that share one cannot be
    linked. An entry program can be linked only where the plugin's namespaced
    object has it as a function (plugin_store: source plugins)."""
    refs = list(chain.pre) + list(chain.post) + ([(request.main.plugin, request.main.function)] if request.main else [])
    for p, f in refs:
        plugin = plugins[p]
        if f in plugin.entries and f not in plugin.link_entries:
            why = ("a prebuilt object keeps it a program of its own" if plugin.source.get("object")
                   else "its name is also used elsewhere in the source (a prog array, a pointer)")
            raise DatapathError("entry program '%s' of plugin '%s' cannot be linked into a dispatcher: %s; "
                                "use mode: freplace (or install the plugin from src:)" % (f, p, why))
    owner = {}
    for p in chain.plugins(request.main):
        plugin = plugins[p]
        for sym in list(plugin.link_symbols.values()) + list(plugin.link_maps):
            if sym in owner and owner[sym] != p:
                raise DatapathError(
                    "plugins '%s' and '%s' both define the global symbol '%s' and cannot be linked into "
                    "one dispatcher; build one from source (src:) so it is namespaced, or rename it"
                    % (owner[sym], p, sym))
            owner[sym] = p


def final_hooks(request):
    """[hook, plugin, function] of the hooks whose verdict ends the chain
    whatever it is (verdict: final), sorted."""
    return sorted([h.hook, h.plugin, h.function] for h in request.hooks if h.verdict == "final")


def build_inputs(family, chain, main, plugins, mode, final=(), stats=False):
    """The inputs that fully decide a build; their fingerprint is the
    dispatcher's identity for idempotence. Both objects of a plugin count: link
    mode uses the namespaced one, freplace mode the plain one."""
    inputs = {
        "template": TEMPLATE_VERSION,
        "kind": family,
        "pre": [[p, f] for p, f in chain.pre],
        "post": [[p, f] for p, f in chain.post],
        "main": [main.plugin, main.function] if main else None,
        "objects": dict((p, [plugins[p].plain_sha256, plugins[p].link_sha256]) for p in chain.plugins(main)),
        "mode": mode,
    }
    if final:  # only then: the fingerprints of every other dispatcher stay as they were
        inputs["final"] = [list(f) for f in final]
    config = dict((p, plugins[p].config_data) for p in chain.plugins(main) if plugins[p].config_data)
    if config:  # likewise: settings count only where a plugin has some
        inputs["config"] = config
    if stats:  # and statistics only where they are on
        inputs["stats"] = True
    return inputs


# ------------------------------------------------------------------ planning

def swap_base(attachment, running_prog_id):
    """The attachment to swap from: ours while it runs a program, else None
    (attach anew). Our own pinned link running a program the registry never
    recorded (a run died between its swap and its save) is still ours: the
    swap takes over from what it runs."""
    if attachment is None or running_prog_id is None:
        return None
    if running_prog_id != attachment.prog_id and attachment.link_pin:
        return attachment.with_program(running_prog_id)
    return attachment


def plan_dispatcher(name, old, request, plugins, facts, force=False, inline_refused=None):
    """The Plan that brings dispatcher name from its record ``old`` (None: new)
    to ``request``. force rebuilds even when the running generation matches
    (its plugins' maps were pinned again, so it no longer shares them).
    inline_refused: {"fingerprint", "reason"} of an inline build that just
    failed (mode auto), else the one on record."""
    request.validate(name)
    mode, mode_reason = resolve_mode_why(request.mode, facts)
    chain, warnings = solve(name, request, plugins)
    refused = inline_refused or (old.inline_refused if old is not None else None)
    if mode == "inline" and request.mode == "auto" and refused:
        # The same inline build failed before (the verifier, a jump too far):
        # auto takes the next mode without trying again.
        tried = build_inputs(program_family(request.attach), chain, request.main, plugins, mode, final_hooks(request),
                             request.stats)
        if fingerprint(tried) == refused.get("fingerprint"):
            mode, mode_reason = resolve_mode_why(request.mode, facts, refused.get("reason") or "refused")
        else:
            refused = None
    elif mode != "inline" or request.mode != "auto":
        refused = None
    if mode in ("link", "inline"):
        check_link_conflicts(request, chain, plugins)
    build = build_inputs(program_family(request.attach), chain, request.main, plugins, mode, final_hooks(request),
                         request.stats)
    fp = fingerprint(build)
    before = describe_dispatcher(old) if old is not None and old.generation else ""

    moved = old is not None and old.attachment is not None and old.request.where() != request.where()
    current = old.current_generation() if old is not None else None
    base = old.attachment if old is not None and not moved else None
    running = facts.running_prog_id if base is not None else None
    adopt = None
    if not moved and running is None and old is not None and old.pending and facts.adoptable is not None:
        # A run died between its swap and its save: the attach point runs its
        # pending program, so the attachment is ours to swap from.
        adopt = base = facts.adoptable
        running = old.pending.prog_id
    base = swap_base(base, running)

    if (not force and not moved and current is not None and running is not None and running == current.prog_id
            and facts.current_pinned and (current.fingerprint == fp or _auto_keeps(request, current, build))):
        if current.fingerprint != fp:
            mode_reason = "%s: the running generation, the same chain in a mode auto may pick (%s)" % (
                old.mode_effective, current.mode)
        return Plan(name, False, request, old.chain, old.mode_effective, current.number, before, before,
                    warnings=warnings, record_request=(old.request != request), prog_id=current.prog_id,
                    mode_reason=mode_reason)

    number = old.next_generation() if old is not None else 1
    kept = [] if old is None or moved else list(old.generations)
    overflow = len(kept) + 1 - request.keep_generations
    release = [g.number for g in kept[:overflow]] if overflow > 0 else []
    if moved:
        release += [g.number for g in old.generations]
    after = describe(name, request, mode, chain, number)
    return Plan(name, True, request, chain, mode, number, before, after, build=build, fingerprint=fp,
                base_attachment=base, running_prog_id=running, adopt=adopt,
                move_from=old.attachment if moved else None, release=release, warnings=warnings,
                prog_id=current.prog_id if current is not None else None, mode_reason=mode_reason,
                inline_refused=refused if mode != "inline" else None)


def _auto_keeps(request, current, build):
    """mode auto does not rebuild a running chain only to change its mode: the
    running generation's build inputs are the planned ones but for the mode.
    (What auto picks depends on the run: a task built on the controller cannot
    inline, one built on the target can; without this they would take turns
    rebuilding the same chain.)"""
    if request.mode != "auto" or not current.build:
        return False
    ours = dict(build, mode=None)
    theirs = dict(current.build, mode=None)
    return ours == theirs


def record_before_swap(plan, old):
    """The record saved with the write-ahead entry, before the swap: the old
    record with the new request (or a fresh one for a new attach point; the
    kept generations belong to the old one) and an adopted attachment."""
    if old is None or plan.move_from is not None:
        return Dispatcher(plan.name, plan.request, generation=old.generation if old else None,
                          high_water=old.high_water if old else 0)
    disp = old.replace(request=plan.request, pending=None, generations=list(old.generations))
    if plan.adopt is not None:
        disp.attachment = plan.adopt
    return disp


def record_after_swap(plan, disp, attachment, prog_id, prog_pin):
    """The record once plan's program runs: the new generation recorded (with
    the request it was built from, for rollback), the released ones dropped."""
    generations = [g for g in disp.generations if g.number not in plan.release] + [
        Generation(plan.generation, plan.fingerprint, plan.build, plan.chain, prog_id, prog_pin,
                   plan.request.generation_request())]
    return disp.replace(attachment=attachment, pending=None, generation=plan.generation,
                        high_water=max(disp.high_water, plan.generation), mode_effective=plan.mode,
                        chain=plan.chain, generations=generations[-plan.request.keep_generations:],
                        inline_refused=plan.inline_refused)
