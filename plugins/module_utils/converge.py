# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring a host to its recorded recipe, one dispatcher at a time.

The modules edit the recipe (plugins, dispatchers, hooks) in the registry and ask
this engine to converge. For a dispatcher that means: solve the chain, compare
its fingerprint with the running generation, and only if they differ (or the
kernel lost it) build the complete new program, swap it in with one atomic
operation, record the new generation and release generations beyond the kept
number. Every step before the swap can fail without touching the running chain.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

from ansible_collections.ebpf.datapath.plugins.module_utils import attach as attach_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import chain as chain_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import plugin_store
from ansible_collections.ebpf.datapath.plugins.module_utils import probe
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError  # noqa: F401 (modules import it from here)
from ansible_collections.ebpf.datapath.plugins.module_utils.faults import crash_point
from ansible_collections.ebpf.datapath.plugins.module_utils.state import (
    DEFAULT_KEEP_GENERATIONS, Layout, Lock, Registry, remove_bpffs_tree, remove_empty_dirs,
    remove_stale_temp_files)


# The fields of a dispatcher that decide where it is attached; a change of any
# of them moves the dispatcher (attach new, then detach old).
ATTACH_FIELDS = ("attach", "interface", "netns", "tc_backend", "endpoint", "custom_hook", "cilium_globals")


def attach_point(disp):
    """The attach.AttachPoint of a dispatcher record."""
    return attach_mod.AttachPoint(
        kind=disp["attach"],
        interface=disp.get("interface"),
        netns=disp.get("netns"),
        backend=disp.get("tc_backend_effective") or disp.get("tc_backend"),
        endpoint=disp.get("endpoint"),
        custom_hook=disp.get("custom_hook"),
        cilium_globals=disp.get("cilium_globals"),
    )


def describe_chain(disp, chain=None, generation=None):
    """The human form of a dispatcher's chain, used in --diff and messages."""
    if disp is None:
        return ""
    chain = chain if chain is not None else disp.get("chain", {"pre": [], "post": []})
    where = disp["attach"]
    if disp.get("interface"):
        where += " on %s" % disp["interface"]
    if disp.get("netns"):
        where += " in netns %s" % disp["netns"]
    if disp.get("endpoint") is not None:
        where += " endpoint %s %s" % (disp["endpoint"], disp.get("custom_hook"))
    gen = generation if generation is not None else disp.get("generation")
    main = disp.get("main")
    main_text = "%s.%s" % (main["plugin"], main["function"]) if main else (
        "cilium verdict" if disp["attach"] == "cilium_custom" else "pass")
    lines = [
        "dispatcher %s (%s, %s mode, generation %s)" % (
            disp["name"], where, disp.get("mode_effective") or disp.get("mode", "auto"), gen),
        "  pre:  " + (" -> ".join("%s.%s" % tuple(x) for x in chain.get("pre", [])) or "(none)"),
        "  main: " + main_text,
        "  post: " + (" -> ".join("%s.%s" % tuple(x) for x in chain.get("post", [])) or "(none)"),
    ]
    return "\n".join(lines) + "\n"


class Engine:
    """One run against one host: holds the lock and the registry."""

    def __init__(self, bpffs_root, state_dir, check_mode=False, lock_timeout=300.0):
        self.layout = Layout(bpffs_root, state_dir)
        self.check_mode = check_mode
        self.lock = Lock(self.layout, timeout=lock_timeout)
        self.registry = None
        self.warnings = []
        self._toolchain = None

    def __enter__(self):
        from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import ensure_bpffs
        ensure_bpffs("/sys/fs/bpf")
        self.lock.__enter__()
        try:
            self.registry = Registry.load(self.layout)
            if not self.check_mode:
                remove_stale_temp_files(self.layout)
                self._remove_orphans()
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        return self.lock.__exit__(*exc)

    @property
    def toolchain(self):
        if self._toolchain is None:
            from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
            # The cache is content-addressed (clang version, flags, source,
            # headers), so hosts simulated on one machine, or a test VM that runs
            # the same clang, may share one: EBPF_DATAPATH_CACHE_DIR names it.
            cache = os.environ.get("EBPF_DATAPATH_CACHE_DIR") or self.layout.cache_dir
            self._toolchain = Toolchain(cache)
        return self._toolchain

    def save(self, crash_at="while_saving"):
        if not self.check_mode:
            self.registry.save(crash_at=crash_at)

    # ---------------------------------------------------------------- recovery
    def _remove_orphans(self):
        """Unpin what a crashed run left in bpffs that the registry does not know."""
        plugins = os.path.join(self.layout.bpffs_root, "plugins")
        if os.path.isdir(plugins):
            for name in os.listdir(plugins):
                if name not in self.registry.plugins:
                    # Maps pinned by a first install killed before its save.
                    remove_bpffs_tree(os.path.join(plugins, name))
        root = os.path.join(self.layout.bpffs_root, "dispatchers")
        if os.path.isdir(root):
            for name in os.listdir(root):
                disp = self.registry.dispatchers.get(name)
                if disp is None:
                    remove_bpffs_tree(os.path.join(root, name))
                    continue
                kept = set("gen-%d" % g["number"] for g in disp.get("generations", []))
                link_pin = (disp.get("attachment") or {}).get("link_pin")
                if link_pin:
                    kept.add(os.path.basename(link_pin))
                for entry in os.listdir(os.path.join(root, name)):
                    # An unrecorded link pin is a crashed first attach: unpinning
                    # it detaches a program nobody asked for any more.
                    if entry.startswith(("gen-", "link-")) and entry not in kept:
                        remove_bpffs_tree(os.path.join(root, name, entry))

    def _discard_generation(self, name, number):
        """Unpin a generation that never ran, and the directories it alone needed."""
        remove_bpffs_tree(self.layout.generation_dir(name, number))
        remove_empty_dirs(self.layout.dispatcher_dir(name), self.layout.bpffs_root)
        self._tidy()

    def _tidy(self):
        """Remove the directories we made in bpffs once nothing is pinned below them."""
        root = self.layout.bpffs_root
        for sub in ("plugins", "dispatchers"):
            remove_empty_dirs(os.path.join(root, sub), root)
        try:
            os.rmdir(root)
        except OSError:
            pass  # not empty, or already gone

    # ---------------------------------------------------------------- plugins
    def ensure_plugin(self, name, src=None, obj=None, sha256=None, cflags=(), include_dirs=()):
        """Returns (changed, record)."""
        old = self.registry.plugins.get(name)
        record = plugin_store.build(self.toolchain, self.layout, name, src=src, obj=obj, sha256=sha256,
                                    cflags=cflags, include_dirs=include_dirs)
        same = old is not None and all(old.get(k) == record.get(k) for k in (
            "plain_sha256", "link_sha256", "source", "cflags", "include_dirs"))
        if same and plugin_store.maps_pinned(self.layout, old):
            return False, old
        if old is not None:
            self._check_users(name, record)
        if self.check_mode:
            return True, record
        created = self._pin_maps(record)
        crash_point("after_map_pin")
        self.registry.plugins[name] = record
        self.save()
        # Dispatchers that use this plugin are rebuilt with its new code, or
        # with its new maps when the pins were lost (a reboot, a manual rm).
        if old is not None and (old.get("link_sha256") != record["link_sha256"] or created):
            try:
                for dname in self.dispatchers_using(name):
                    self.converge_dispatcher(dname, force=created)
            except BaseException:
                # The verifier refused the new code in a dispatcher: keep the old
                # code on record (what the running chains were built from).
                self.registry.plugins[name] = old
                self.save()
                for m in set(record["maps"]) - set(old["maps"]):
                    remove_bpffs_tree(self.layout.plugin_map_pin(name, m))
                raise
        return True, record

    def _check_users(self, name, record):
        """New code for a hooked plugin must still fit every dispatcher using it
        (functions present, signatures right, no symbol clash); refuse before
        anything is stored rather than leave a recipe that cannot be built."""
        users = self.dispatchers_using(name)
        if not users:
            return
        old = self.registry.plugins[name]
        self.registry.plugins[name] = record
        try:
            for dname in users:
                disp = self.registry.dispatchers[dname]
                try:
                    chain = self.solve(disp)
                    if self.resolve_mode(disp.get("mode", "auto")) == "link":
                        self._check_link_conflicts(disp, chain)
                except DatapathError as exc:
                    raise DatapathError("plugin '%s' is used by dispatcher '%s', which its new code would break: %s"
                                        % (name, dname, exc))
        finally:
            self.registry.plugins[name] = old

    def _pin_maps(self, record):
        return plugin_store.pin_maps(self.layout, record)

    def dispatchers_using(self, plugin):
        return sorted(set(d for d, _hook in self.registry.hooks_using_plugin(plugin)))

    def remove_plugin(self, name, force=False):
        if name not in self.registry.plugins and not os.path.exists(self.layout.plugin_dir(name)):
            return False
        users = self.registry.hooks_using_plugin(name)
        if users and not force:
            raise DatapathError(
                "plugin '%s' is still hooked (%s); remove those hooks first or set force: true"
                % (name, ", ".join("%s:%s.%s" % (d, h["hook"], h["function"]) for d, h in users)))
        if self.check_mode:
            return True
        for dname in sorted(set(d for d, _hook in users)):
            disp = self.registry.dispatchers[dname]
            disp["hooks"] = [h for h in disp.get("hooks", []) if h["plugin"] != name]
            if disp.get("main") and disp["main"].get("plugin") == name:
                disp["main"] = None
            self.converge_dispatcher(dname)
        self.registry.plugins.pop(name, None)
        self.save()
        plugin_store.remove(self.layout, name)
        self._tidy()
        return True

    # ------------------------------------------------------------ dispatchers
    def resolve_mode(self, requested):
        """auto → freplace where the kernel loads EXT programs, else link."""
        if requested == "link":
            return "link"
        ext_ok = probe.has_freplace()
        if requested == "auto":
            return "freplace" if ext_ok and disp_mod.FREPLACE_SUPPORTED else "link"
        # requested == freplace
        if not ext_ok:
            raise DatapathError(
                "mode freplace needs BPF_PROG_TYPE_EXT programs, and this kernel refuses them (%s); "
                "use mode: link (works on this kernel) or mode: auto" % probe.freplace_reason())
        if not disp_mod.FREPLACE_SUPPORTED:
            raise DatapathError("mode freplace is not available in this version of the collection; use mode: link")
        return "freplace"

    def solve(self, disp):
        """The ordered chain of a dispatcher record: {'pre': [[p, f]...], 'post': [...]}"""
        kind = disp_mod.program_kind(disp["attach"])
        for hook in disp.get("hooks", []):
            record = self.registry.plugins.get(hook["plugin"])
            if record is None:
                raise DatapathError(
                    "hook %s.%s at dispatcher '%s' names unknown plugin '%s'; add it with "
                    "ebpf.datapath.datapath_plugin" % (hook["plugin"], hook["function"], disp["name"], hook["plugin"]))
            plugin_store.check_hook_signature(record, hook["function"], hook["hook"], kind)
        main = disp.get("main")
        if main:
            record = self.registry.plugins.get(main["plugin"])
            if record is None:
                raise DatapathError("main of dispatcher '%s' names unknown plugin '%s'" % (disp["name"], main["plugin"]))
            try:
                plugin_store.check_hook_signature(record, main["function"], "pre", kind)
            except plugin_store.PluginError as exc:
                raise DatapathError("main: %s" % exc)
        try:
            solved = chain_mod.solve_dispatcher(disp.get("hooks", []), strict=disp.get("strict_constraints", False))
        except chain_mod.ChainError as exc:
            raise DatapathError("dispatcher '%s': %s" % (disp["name"], exc))
        self.warnings.extend(solved.get("warnings", []))
        return {"pre": [list(x) for x in solved["pre"]], "post": [list(x) for x in solved["post"]]}

    def _check_link_conflicts(self, disp, chain):
        """Prebuilt objects keep their symbol names; two that share one cannot be linked."""
        used = sorted(set([p for p, _function in chain["pre"] + chain["post"]] +
                          ([disp["main"]["plugin"]] if disp.get("main") else [])))
        owner = {}
        for p in used:
            record = self.registry.plugins[p]
            names = list(record.get("link_symbols", {}).values()) + list(record.get("link_maps", {}))
            for sym in names:
                if sym in owner and owner[sym] != p:
                    raise DatapathError(
                        "plugins '%s' and '%s' both define the global symbol '%s' and cannot be linked into "
                        "one dispatcher; build one from source (src:) so it is namespaced, or rename it"
                        % (owner[sym], p, sym))
                owner[sym] = p

    def converge_dispatcher(self, name, force=False):
        """Make the kernel run the recorded recipe of dispatcher name.

        force rebuilds even when the running generation matches (its plugin maps
        were re-pinned, so it no longer shares them with their pins).
        Returns dict(changed, before, after, generation, mode, chain, prog_id).
        """
        disp = self.registry.dispatchers[name]
        before = describe_chain(disp) if disp.get("generation") else ""
        mode = self.resolve_mode(disp.get("mode", "auto"))
        kind = disp_mod.program_kind(disp["attach"])
        chain = self.solve(disp)
        if mode == "link":
            self._check_link_conflicts(disp, chain)
        recipe = disp_mod.build_recipe(kind, chain, disp.get("main"), self.registry.plugins)
        recipe["mode"] = mode
        fp = disp_mod.recipe_fingerprint(recipe)

        current = self._current_generation(disp)
        ap = attach_point(disp)
        running = None
        if disp.get("attachment"):
            running = attach_mod.attached_prog_id(ap, disp["attachment"])
        if running is None and disp.get("pending") and not self.check_mode:
            running = self._adopt_pending(disp, ap)
        if (not force and current and current["fingerprint"] == fp and running is not None
                and running == current.get("prog_id") and os.path.exists(current["prog_pin"])):
            return self._result(False, disp, before, describe_chain(disp), current)

        # Numbers only grow, also after a rollback to an older generation.
        number = max([g["number"] for g in disp.get("generations", [])] + [disp.get("generation") or 0]) + 1
        preview = dict(disp, mode_effective=mode)
        after = describe_chain(preview, chain, number)
        if self.check_mode:
            return dict(self._result(True, disp, before, after, current), generation=number, mode=mode, chain=chain)

        prog_pin = self.layout.generation_prog_pin(name, number)
        try:
            built = disp_mod.build(mode, self.toolchain, self.layout, name, kind, chain, disp.get("main"),
                                   self.registry.plugins, prog_pin)
        except DatapathError:
            self._discard_generation(name, number)
            raise
        crash_point("after_pin")
        prog_id = _prog_id(built.fd)
        try:
            self._swap_in(disp, ap, running, built.fd, number, prog_id)
        except Exception as exc:
            built.close()
            self._discard_generation(name, number)
            raise DatapathError("attaching dispatcher '%s' failed; the running chain is unchanged: %s" % (name, exc))
        built.close()

        disp["generation"] = number
        disp["mode_effective"] = mode
        disp["chain"] = chain
        generations = disp.setdefault("generations", [])
        # spec: what the recipe was, so a rollback restores it and a rerun of the
        # rolled-back recipe is recognised as unchanged.
        generations.append({"number": number, "fingerprint": fp, "recipe": recipe, "chain": chain,
                            "prog_id": prog_id, "prog_pin": prog_pin,
                            "spec": {"hooks": copy.deepcopy(disp.get("hooks", [])),
                                     "main": copy.deepcopy(disp.get("main")),
                                     "strict_constraints": disp.get("strict_constraints", False)}})
        keep = int(disp.get("keep_generations") or DEFAULT_KEEP_GENERATIONS)
        dropped = generations[:-keep]
        disp["generations"] = generations[-keep:]
        self.save()
        for old in dropped:
            remove_bpffs_tree(self.layout.generation_dir(name, old["number"]))
        return self._result(True, disp, before, after, disp["generations"][-1])

    def _swap_in(self, disp, ap, running, prog_fd, number, prog_id):
        """Put program prog_fd (generation number) at the dispatcher's attach
        point with one operation, and update disp["attachment"].

        Write-ahead first: should this run die between the swap and the
        caller's save, the next run finds the attach point running this program
        and knows it is ours (see _adopt_pending). On failure the record is
        dropped again and the running chain is untouched.
        """
        disp["pending"] = {"generation": number, "prog_id": prog_id}
        self.save(crash_at="while_saving_ahead")
        try:
            if disp.get("attachment") and running is not None:
                record = disp["attachment"]
                if running != record.get("prog_id") and record.get("link_pin"):
                    # Our own pinned link runs a program the registry never
                    # recorded: a run died between its swap and its save.
                    # The link is ours, so we take over from what it runs.
                    record = dict(record, prog_id=running)
                disp["attachment"] = attach_mod.swap(ap, record, prog_fd)
            else:
                if disp.get("attachment"):
                    # Our attachment is gone (reboot, someone detached it): start over.
                    attach_mod.detach(ap, disp["attachment"])
                disp["attachment"] = attach_mod.attach(ap, prog_fd, self.layout.link_pin(disp["name"], number),
                                                       position=disp.get("position"))
        except Exception:
            disp.pop("pending", None)
            raise
        crash_point("after_swap")
        disp.pop("pending", None)

    def _adopt_pending(self, disp, ap):
        """A run died after installing a program at the attach point and before
        recording it. If the attach point runs exactly that program, the
        attachment is ours: return its id so the caller swaps from it.

        tcx and XDP first attachments need no help: their unrecorded link pin is
        removed at the start of the run, which detaches them.
        """
        pending = disp.pop("pending")
        try:
            record = disp.get("attachment")
            if record is None:
                # A first attachment: a clsact filter or Cilium slot holding the
                # pending program has no record yet; find it by program id.
                record = attach_mod.find_attachment(ap, pending["prog_id"])
            if record is None:
                return None
            candidate = dict(record, prog_id=pending["prog_id"])
            if attach_mod.attached_prog_id(ap, candidate) != pending["prog_id"]:
                return None
        except attach_mod.AttachError:
            return None
        disp["attachment"] = candidate
        return pending["prog_id"]

    @staticmethod
    def _current_generation(disp):
        number = disp.get("generation")
        for gen in disp.get("generations", []):
            if gen["number"] == number:
                return gen
        return None

    @staticmethod
    def _result(changed, disp, before, after, generation):
        return {
            "changed": changed,
            "before": before,
            "after": after,
            "generation": generation["number"] if generation else None,
            "mode": disp.get("mode_effective"),
            "chain": generation["chain"] if generation else {"pre": [], "post": []},
            "prog_id": generation.get("prog_id") if generation else None,
        }

    def ensure_dispatcher(self, spec):
        """Create or update dispatcher spec['name'] and converge it."""
        name = spec["name"]
        old = self.registry.dispatchers.get(name)
        new = copy.deepcopy(old) if old else {"name": name, "hooks": [], "generations": []}
        for key, value in spec.items():
            if key == "hooks" and value is None:
                continue  # hooks managed by datapath_hook tasks
            new[key] = value
        moved = old is not None and old.get("attachment") and any(
            old.get(k) != new.get(k) for k in ATTACH_FIELDS)
        if moved:
            # Attach the new place first, then release the old one.
            new.pop("attachment", None)
            new["generation"] = old.get("generation")
        if self.check_mode:
            saved = self.registry.dispatchers.get(name)
            self.registry.dispatchers[name] = new
            try:
                result = self.converge_dispatcher(name)
            finally:
                if saved is None:
                    self.registry.dispatchers.pop(name)
                else:
                    self.registry.dispatchers[name] = saved
            if moved:
                result["changed"] = True
            return result
        self.registry.dispatchers[name] = new
        try:
            if moved:
                new["generations"] = []
                result = self.converge_dispatcher(name)
                attach_mod.detach(attach_point(old), old["attachment"])
                for gen in old.get("generations", []):
                    if gen["number"] not in [g["number"] for g in new["generations"]]:
                        remove_bpffs_tree(self.layout.generation_dir(name, gen["number"]))
                result["changed"] = True
            else:
                result = self.converge_dispatcher(name)
        except BaseException:
            if old is None:
                self.registry.dispatchers.pop(name, None)
            else:
                self.registry.dispatchers[name] = old
            self.save()  # converge may have written its write-ahead record
            raise
        if old is not None and not result["changed"] and _recipe_fields(old) != _recipe_fields(new):
            # Only bookkeeping changed (e.g. keep_generations); record it.
            self.save()
        return result

    def remove_dispatcher(self, name):
        disp = self.registry.dispatchers.get(name)
        if disp is None:
            leftover = os.path.exists(self.layout.dispatcher_dir(name))
            if leftover and not self.check_mode:
                remove_bpffs_tree(self.layout.dispatcher_dir(name))
            return {"changed": leftover, "before": "", "after": ""}
        before = describe_chain(disp)
        if self.check_mode:
            return {"changed": True, "before": before, "after": ""}
        if disp.get("attachment"):
            attach_mod.detach(attach_point(disp), disp["attachment"])
        remove_bpffs_tree(self.layout.dispatcher_dir(name))
        del self.registry.dispatchers[name]
        self.save()
        self._tidy()
        return {"changed": True, "before": before, "after": ""}

    # -------------------------------------------------------------- rollback
    def rollback(self, name, number=None):
        """Make a kept generation of dispatcher name the running one again, with
        one atomic swap to its pinned program, and restore its recipe.

        number None means the newest kept generation older than the current one.
        Returns dict(changed, before, after, from, to).
        """
        disp = self.registry.dispatchers.get(name)
        if disp is None:
            raise DatapathError("unknown dispatcher '%s'" % name)
        current = disp.get("generation")
        kept = sorted(g["number"] for g in disp.get("generations", []))
        if number is None:
            older = [n for n in kept if current is None or n < current]
            if not older:
                raise DatapathError(
                    "dispatcher '%s' has no generation older than %s to roll back to (kept: %s)"
                    % (name, current, ", ".join(map(str, kept)) or "none"))
            number = older[-1]
        target = dict((g["number"], g) for g in disp.get("generations", [])).get(number)
        if target is None:
            raise DatapathError("dispatcher '%s' has no generation %s; kept generations: %s (raise keep_generations "
                                "to keep more)" % (name, number, ", ".join(map(str, kept)) or "none"))
        ap = attach_point(disp)
        running = attach_mod.attached_prog_id(ap, disp["attachment"]) if disp.get("attachment") else None
        before = describe_chain(disp)
        after = describe_chain(dict(disp, mode_effective=target["recipe"].get("mode")), target["chain"], number)
        result = {"name": name, "from": current, "to": number, "before": before, "after": after}
        if number == current and running is not None and running == target.get("prog_id"):
            return dict(result, changed=False, after=before)
        missing = sorted(self._plugins_of(target.get("spec") or {}) - set(self.registry.plugins))
        if missing:
            raise DatapathError("generation %s of dispatcher '%s' uses plugin(s) %s, removed since; add them again "
                                "with ebpf.datapath.datapath_plugin first" % (number, name, ", ".join(missing)))
        if "spec" not in target:
            raise DatapathError("generation %s of dispatcher '%s' was recorded by an older version of the "
                                "collection without its recipe; it cannot be rolled back to" % (number, name))
        from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
        try:
            fd = libbpf.obj_get(target["prog_pin"])
        except libbpf.BpfError as exc:
            raise DatapathError("generation %s of dispatcher '%s' is no longer pinned at %s (%s); after a reboot only "
                                "the current generation is rebuilt" % (number, name, target["prog_pin"], exc))
        try:
            if libbpf.prog_info(fd).id != target.get("prog_id"):
                raise DatapathError("%s does not hold the program generation %s recorded; not rolling back to it"
                                    % (target["prog_pin"], number))
            if self.check_mode:
                return dict(result, changed=True)
            try:
                self._swap_in(disp, ap, running, fd, number, target["prog_id"])
            except Exception as exc:
                self.save()
                raise DatapathError("rolling dispatcher '%s' back failed; the running chain is unchanged: %s"
                                    % (name, exc))
        finally:
            libbpf.close_fd(fd)
        disp["generation"] = number
        disp["chain"] = target["chain"]
        disp["mode_effective"] = target["recipe"].get("mode")
        disp["hooks"] = copy.deepcopy(target["spec"]["hooks"])
        disp["main"] = copy.deepcopy(target["spec"]["main"])
        disp["strict_constraints"] = target["spec"].get("strict_constraints", False)
        self.save()
        return dict(result, changed=True)

    # --------------------------------------------------------------- restore
    def restore(self):
        """Bring back, after a reboot or a lost bpffs, everything the registry
        records: plugin maps pinned, every dispatcher built and attached.
        Generations whose pins are gone are forgotten (only the running chain is
        rebuilt). Returns dict(changed, plugins: [...], dispatchers: [...])."""
        repinned = []
        for name, record in sorted(self.registry.plugins.items()):
            if plugin_store.maps_pinned(self.layout, record):
                continue
            repinned.append(name)
            if not self.check_mode:
                self._pin_maps(record)
        results = []
        for name, disp in sorted(self.registry.dispatchers.items()):
            gone = [g for g in disp.get("generations", []) if not os.path.exists(g["prog_pin"])]
            if gone and not self.check_mode:
                disp["generations"] = [g for g in disp["generations"] if g not in gone]
                self.save()
            force = any(p in repinned for p in self._plugins_of(disp))
            result = self.converge_dispatcher(name, force=force)
            results.append(dict(result, name=name))
        return {"changed": bool(repinned) or any(r["changed"] for r in results),
                "plugins": repinned, "dispatchers": results}

    @staticmethod
    def _plugins_of(disp):
        names = set(h["plugin"] for h in disp.get("hooks", []))
        if disp.get("main"):
            names.add(disp["main"]["plugin"])
        return names

    # ----------------------------------------------------------------- hooks
    def set_hook(self, dispatcher, entry, present=True):
        """Add, update or remove one hook entry and converge the dispatcher."""
        disp = self.registry.dispatchers.get(dispatcher)
        if disp is None:
            raise DatapathError("unknown dispatcher '%s'; create it first with ebpf.datapath.dispatcher"
                                % dispatcher)
        key = (entry["plugin"], entry["function"], entry["hook"])
        old_hooks = disp.get("hooks", [])
        hooks = [h for h in old_hooks if (h["plugin"], h["function"], h["hook"]) != key]
        if present:
            if entry["plugin"] not in self.registry.plugins:
                raise DatapathError("unknown plugin '%s'; add it first with ebpf.datapath.datapath_plugin"
                                    % entry["plugin"])
            hooks.append(entry)
        hooks.sort(key=_hook_key)
        if hooks == sorted(old_hooks, key=_hook_key):
            # Nothing to record; still converge, so a lost attachment comes back.
            if disp.get("generation"):
                return self.converge_dispatcher(dispatcher)
            return {"changed": False, "before": describe_chain(disp), "after": describe_chain(disp),
                    "generation": disp.get("generation"), "chain": disp.get("chain")}
        disp["hooks"] = hooks
        try:
            result = self.converge_dispatcher(dispatcher)
        except BaseException:
            disp["hooks"] = old_hooks
            self.save()  # converge may have written its write-ahead record
            raise
        if self.check_mode:
            disp["hooks"] = old_hooks
        result["changed"] = True
        return result

    # ------------------------------------------------------------------ facts
    def facts(self):
        """A read-only view of the registry, with kernel liveness."""
        dispatchers = []
        for name, disp in sorted(self.registry.dispatchers.items()):
            running = None
            if disp.get("attachment"):
                try:
                    running = attach_mod.attached_prog_id(attach_point(disp), disp["attachment"])
                except Exception as exc:  # facts must not fail on one broken attach point
                    self.warnings.append("dispatcher %s: %s" % (name, exc))
            current = self._current_generation(disp)
            dispatchers.append({
                "name": name,
                "attach": disp["attach"],
                "interface": disp.get("interface"),
                "netns": disp.get("netns"),
                "mode": disp.get("mode"),
                "mode_effective": disp.get("mode_effective"),
                "tc_backend": (disp.get("attachment") or {}).get("backend"),
                "main": disp.get("main"),
                "hooks": disp.get("hooks", []),
                "chain": disp.get("chain", {"pre": [], "post": []}),
                "generation": disp.get("generation"),
                "generations": [{"number": g["number"], "prog_id": g.get("prog_id"), "chain": g["chain"],
                                 "current": g["number"] == disp.get("generation"),
                                 "pinned": os.path.exists(g["prog_pin"])}
                                for g in disp.get("generations", [])],
                "attached": running is not None and current is not None and running == current.get("prog_id"),
                "prog_id": running,
                "attachment": disp.get("attachment"),
                "text": describe_chain(disp),
            })
        plugins = []
        for name, record in sorted(self.registry.plugins.items()):
            plugins.append({
                "name": name,
                "source": record["source"],
                "functions": sorted(record["functions"]),
                "maps": dict((m, self.layout.plugin_map_pin(name, m)) for m in record["maps"]),
                "used_by": self.dispatchers_using(name),
            })
        return {"dispatchers": dispatchers, "plugins": plugins}


def _hook_key(hook):
    """Hooks are recorded sorted by this, so equal sets compare equal."""
    return (hook["hook"], hook["plugin"], hook["function"])


def _prog_id(fd):
    from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import prog_info
    return prog_info(fd).id


def _recipe_fields(disp):
    return dict((k, v) for k, v in disp.items() if k not in ("attachment", "generations", "generation", "chain"))
