# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine: bring a host to a request, one dispatcher at a time.

For a dispatcher the engine gathers the kernel facts (what our attachment
runs, a write-ahead program left by a killed run, whether the running
generation is still pinned), asks the planner (planner.py, pure) for a plan,
and, unless in check mode, applies it: build the complete new program, swap it
in with one atomic operation through the attach backend (attach.py), record
the new generation and release generations beyond the kept number. Check mode
returns the plan; nothing is changed and then undone. Every step before the
swap can fail without touching the running chain.

This file holds the run (lock, roots, registry, recovery) and the planning; a
no-op rerun ends here. What changes a host lives beside it and is imported
where used: converge_plugins.py (install, remove plugins), converge_apply.py
(apply a plan, roll back, remove, restore, set a hook), converge_facts.py (the
read-only view). A module run compiles the Python its task needs, which is
most of a no-op rerun's time.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import DispatcherRequest
from ansible_collections.ebpf.datapath.plugins.module_utils.state import (
    Layout, Lock, Registry, remove_bpffs_tree, remove_empty_dirs, remove_stale_temp_files)


class Engine:
    """One run against one host: holds the lock and the registry.

    Entering checks the roots (roots.check_roots) and, outside check mode,
    claims them (roots.claim_roots) before anything is made in them."""

    # module_common leaves checking, claiming and releasing the roots to us.
    CLAIMS_ROOTS = True

    def __init__(self, bpffs_root, state_dir, check_mode=False, lock_timeout=300.0, run=None, build_on="target",
                 generated_objects=()):
        self.layout = Layout(bpffs_root, state_dir)
        # The toolchain's command runner (clang_run.run_probe); None: this run
        # has no way to start clang, and a compile says so.
        self.run = run
        # build_on controller: this host compiles nothing; the objects of the C
        # it generates come from the controller (generated.py).
        self.build_on = build_on
        self.generated_objects = list(generated_objects or ())
        self.check_mode = check_mode
        self.lock = Lock(self.layout, timeout=lock_timeout)
        self.registry = None
        self.warnings = []
        self._toolchain = None
        self._recorded_change = False

    def __enter__(self):
        from ansible_collections.ebpf.datapath.plugins.module_utils import roots
        from ansible_collections.ebpf.datapath.plugins.module_utils.bpffs import ensure_bpffs
        # Nothing is made (no mkdir, no lock file, no orphan cleanup) in roots
        # that are not ours: check them, and claim them, first.
        found = roots.check_roots(self.layout.bpffs_root, self.layout.state_dir)
        ensure_bpffs("/sys/fs/bpf")
        if not self.check_mode and not found.settled:
            # Made before the lock, whose file is in state_dir.
            roots.claim_roots(self.layout.bpffs_root, self.layout.state_dir)
        self.lock.__enter__()
        try:
            if not self.check_mode:
                # Again under the lock: a concurrent run may have released an
                # empty bpffs_root in between.
                roots.claim_roots(self.layout.bpffs_root, self.layout.state_dir)
            self.registry = Registry.load(self.layout)
            if not self.check_mode:
                remove_stale_temp_files(self.layout)
                self._remove_orphans()
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        from ansible_collections.ebpf.datapath.plugins.module_utils import roots
        # A module's exit_json inside ``with`` leaves through SystemExit(0): a success.
        ok = exc[0] is None or (issubclass(exc[0], SystemExit) and not getattr(exc[1], "code", 1))
        try:
            if ok and self._recorded_change:
                self._prune()
            if not self.check_mode:
                # A bpffs_root left holding nothing but its marker goes.
                roots.release_bpffs_root(self.layout.bpffs_root)
        finally:
            self.lock.__exit__(*exc)
        return False

    def _prune(self):
        """Tidy step, under the lock, after the saves that recorded changes:
        drop stored objects the registry no longer references and trim this
        host's compile cache (prune.py). Kept: installed plugins' objects and
        those of every kept generation, rollback targets included."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import prune
        from ansible_collections.ebpf.datapath.plugins.module_utils.schema import registry_to_json
        data = self.registry.data
        keep = data.referenced_objects() | prune.referenced_objects(registry_to_json(data))
        prune.prune(self.layout, keep)

    @property
    def toolchain(self):
        """The run's generated.Builder: this host's clang (when build_on is not
        controller) and the objects the controller built."""
        if self._toolchain is None:
            from ansible_collections.ebpf.datapath.plugins.module_utils.generated import Builder
            # The cache is content-addressed (clang version, flags, source,
            # headers), so hosts simulated on one machine, or a test VM that runs
            # the same clang, may share one: EBPF_DATAPATH_CACHE_DIR names it.
            cache = os.environ.get("EBPF_DATAPATH_CACHE_DIR") or self.layout.cache_dir
            builder = Builder(cache, self.run, compile_on_host=self.build_on != "controller")
            builder.accept(self.generated_objects)
            self._toolchain = builder
        return self._toolchain

    def save(self, crash_at="while_saving"):
        if not self.check_mode:
            self.registry.save(crash_at=crash_at)
            self._recorded_change = True

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
                kept = set("gen-%d" % g.number for g in disp.generations)
                if disp.pending is not None and self._runs_pending(disp):
                    # A run killed between its swap and its save: the attach
                    # point runs the pending generation, whose pins (freplace
                    # extension links, prog arrays) it needs until the run that
                    # adopts it replaces it (converge_apply.apply).
                    kept.add("gen-%d" % disp.pending.generation)
                for attachment in (disp.attachment, disp.pending and disp.pending.old_attachment):
                    if attachment is not None and attachment.link_pin:
                        kept.add(os.path.basename(attachment.link_pin))
                for entry in os.listdir(os.path.join(root, name)):
                    # An unrecorded link pin is a crashed first attach: unpinning
                    # it detaches a program nobody asked for any more.
                    if entry.startswith(("gen-", "link-")) and entry not in kept:
                        remove_bpffs_tree(os.path.join(root, name, entry))

    def tidy(self):
        """Remove the directories we made in bpffs once nothing is pinned below them."""
        root = self.layout.bpffs_root
        for sub in ("plugins", "dispatchers"):
            remove_empty_dirs(os.path.join(root, sub), root)
        try:
            os.rmdir(root)
        except OSError:
            pass  # not empty, or already gone

    # ---------------------------------------------------------------- plugins
    def ensure_plugin(self, name, src=None, obj=None, sha256=None, cflags=(), include_dirs=(), shipped=None,
                      config=None):
        """Returns (changed, schema.Plugin). shipped: the controller's build of
        src (dict link_object, link_sha256, src, src_sha256; obj and sha256 are
        its plain object). config: the plugin's settings ({variable: value})."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import converge_plugins
        return converge_plugins.ensure_plugin(self, name, src=src, obj=obj, sha256=sha256, cflags=cflags,
                                              include_dirs=include_dirs, shipped=shipped, config=config)

    def dispatchers_using(self, plugin):
        return self.registry.dispatchers_using(plugin)

    def remove_plugin(self, name, force=False):
        from ansible_collections.ebpf.datapath.plugins.module_utils import converge_plugins
        return converge_plugins.remove_plugin(self, name, force=force)

    # ------------------------------------------------------------ dispatchers
    def ensure_dispatcher(self, spec):
        """Create or update dispatcher spec['name'] (a module's options) and converge it."""
        old = self.registry.dispatchers.get(spec["name"])
        request = DispatcherRequest.from_spec(spec, old.request if old is not None else None)
        return self.converge_request(spec["name"], request)

    def converge_dispatcher(self, name, force=False):
        """Make the kernel run the recorded request of dispatcher name.

        force rebuilds even when the running generation matches (its plugin maps
        were re-pinned, so it no longer shares them with their pins).
        Returns dict(changed, before, after, generation, mode, chain, prog_id).
        """
        return self.converge_request(name, self.registry.dispatchers[name].request, force=force)

    def plan(self, name, request, force=False, inline_refused=None):
        """The plan for dispatcher name to meet request (kernel facts gathered here, read-only)."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import planner
        old = self.registry.dispatchers.get(name)
        plan = planner.plan_dispatcher(name, old, request, self.registry.plugins, self._kernel_facts(old, request),
                                       inline_refused=inline_refused,
                                       force=force)
        self.warnings.extend(plan.warnings)
        return plan

    def _release_old_place(self, name):
        """A move killed after attaching the new place and before releasing the
        old one: its write-ahead record names the old attachment; release it.
        The rest of the record (the pending program, for adoption) stays."""
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachPoint, backend_for
        disp = self.registry.dispatchers.get(name)
        pending = disp.pending if disp is not None else None
        if pending is None or pending.old_attachment is None:
            return
        old_ap = AttachPoint.of(DispatcherRequest(**pending.old_where))
        backend_for(old_ap, pending.old_attachment).detach(pending.old_attachment)
        self.registry.dispatchers[name] = disp.replace(pending=pending.replace(old_attachment=None, old_where=None))
        self.save()

    def converge_request(self, name, request, force=False):
        """Converge dispatcher name to request (recorded once it runs)."""
        if not self.check_mode:
            self._release_old_place(name)
        plan = self.plan(name, request, force=force)
        if self.check_mode:
            return plan.result()
        if not plan.changed:
            if plan.record_request:
                # Only bookkeeping changed (e.g. keep_generations); record it.
                self.registry.dispatchers[name] = self.registry.dispatchers[name].replace(request=request)
                self.save()
            return plan.result()
        from ansible_collections.ebpf.datapath.plugins.module_utils import converge_apply
        try:
            return converge_apply.apply(self, plan)
        except converge_apply.InlineRefused as refused:
            # mode auto: the chain does not build inline (the verifier, a jump
            # too far...). Nothing changed; the next mode is built instead and
            # the refusal recorded, so a rerun does not try again.
            plan = self.plan(name, request, force=force,
                             inline_refused={"fingerprint": plan.fingerprint, "reason": str(refused.error)})
            self.warnings.append("dispatcher %s: mode auto built %s, not inline: %s" % (name, plan.mode, refused.error))
            return converge_apply.apply(self, plan)

    def mode_facts(self, request, plugins=None):
        """The facts mode resolution needs: for inline, whether every plugin
        of the request was installed from source and this host compiles; for
        freplace, whether the kernel loads EXT programs (probed only when
        asked)."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import planner
        requested = request.mode
        facts = planner.KernelFacts()
        if requested in ("inline", "auto"):
            facts.inline, facts.inline_reason = self._inline_possible(request, plugins or self.registry.plugins)
        if requested in ("freplace", "auto"):
            from ansible_collections.ebpf.datapath.plugins.module_utils import probe
            ok = probe.has_freplace()
            facts.freplace, facts.freplace_reason = ok, "" if ok else probe.freplace_reason()
        return facts

    def _inline_possible(self, request, plugins):
        """(True, "") when the request's plugins can be compiled inline here."""
        if not getattr(self.toolchain, "compile_on_host", True):
            return False, "inline mode compiles the plugins' sources on the target, and build_on is controller"
        prebuilt = sorted(p for p in request.plugins() if p in plugins and "src" not in plugins[p].source)
        if prebuilt:
            return False, "plugin %s installed from a prebuilt object only" % ", ".join("'%s'" % p for p in prebuilt)
        return True, ""

    def _kernel_facts(self, old, request):
        """What the kernel runs at the recorded attach point (reads only)."""
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachPoint, attached_prog_id
        facts = self.mode_facts(request)
        if old is None:
            return facts
        ap = AttachPoint.of(old.request)
        if old.attachment is not None:
            facts.running_prog_id = attached_prog_id(ap, old.attachment)
        if facts.running_prog_id is None and old.pending is not None:
            facts.adoptable = self._find_pending(ap, old)
        current = old.current_generation()
        facts.current_pinned = current is not None and os.path.exists(current.prog_pin)
        return facts

    def _runs_pending(self, disp):
        """Whether disp's attach point runs its write-ahead program (False
        when that cannot be told: the orphan is then removed, as before)."""
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachPoint
        try:
            return self._find_pending(AttachPoint.of(disp.request), disp) is not None
        except DatapathError:
            return False

    @staticmethod
    def _find_pending(ap, disp):
        """The attachment running disp's write-ahead program, or None.

        A run died after installing a program at the attach point and before
        recording it. If the attach point runs exactly that program, the
        attachment is ours. A first clsact filter or Cilium slot has no record
        yet: it is found by program id. tcx and XDP first attachments need no
        help: their unrecorded link pin is removed at the start of the run,
        which detaches them.
        """
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import (
            AttachError, attached_prog_id, backend_for)
        prog_id = disp.pending.prog_id
        try:
            record = disp.attachment
            if record is None:
                record = backend_for(ap).find(prog_id)
            if record is None:
                return None
            candidate = record.with_program(prog_id)
            if attached_prog_id(ap, candidate) != prog_id:
                return None
        except AttachError:
            return None
        return candidate

    def remove_dispatcher(self, name):
        from ansible_collections.ebpf.datapath.plugins.module_utils import converge_apply
        return converge_apply.remove_dispatcher(self, name)

    def rollback(self, name, number=None):
        """Make a kept generation of dispatcher name the running one again (see
        converge_apply.rollback). Returns dict(changed, before, after, from, to)."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import converge_apply
        return converge_apply.rollback(self, name, number)

    def restore(self):
        """Bring back everything the registry records (see converge_apply.restore).
        Returns dict(changed, plugins: [...], dispatchers: [...])."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import converge_apply
        return converge_apply.restore(self)

    def set_hook(self, dispatcher, entry, present=True):
        """Add, update or remove one hook entry and converge the dispatcher."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import converge_apply
        return converge_apply.set_hook(self, dispatcher, entry, present=present)

    def facts(self):
        """A read-only view of the registry, with kernel liveness (converge_facts.py)."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import converge_facts
        return converge_facts.facts(self)
