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

The plugin operations import plugin_store, the dispatcher operations the
planner and the attach backends, each where used: a module run imports what
its task needs, which is most of a no-op rerun's time (compiling Python).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError  # noqa: F401 (re-exported)
from ansible_collections.ebpf.datapath.plugins.module_utils.faults import crash_point
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import (
    DispatcherRequest, Hook, Pending, sorted_hooks)
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
        # The toolchain's command runner (toolchain._run_probe); None: this run
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
        roots.check_roots(self.layout.bpffs_root, self.layout.state_dir)
        ensure_bpffs("/sys/fs/bpf")
        if not self.check_mode:
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
                for attachment in (disp.attachment, disp.pending and disp.pending.old_attachment):
                    if attachment is not None and attachment.link_pin:
                        kept.add(os.path.basename(attachment.link_pin))
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
    def ensure_plugin(self, name, src=None, obj=None, sha256=None, cflags=(), include_dirs=(), shipped=None,
                      config=None):
        """Returns (changed, schema.Plugin). shipped: the controller's build of
        src (dict link_object, link_sha256, src, src_sha256; obj and sha256 are
        its plain object). config: the plugin's settings ({variable: value})."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import plugin_store
        old = self.registry.plugins.get(name)
        if shipped:
            record = plugin_store.build_shipped(self.toolchain.cache_dir, name, obj, sha256, shipped["link_object"],
                                                shipped["link_sha256"], shipped["src"], shipped["src_sha256"],
                                                cflags=cflags, include_dirs=include_dirs)
        else:
            record = plugin_store.build(self.toolchain, self.layout, name, src=src, obj=obj, sha256=sha256,
                                        cflags=cflags, include_dirs=include_dirs)
        record = plugin_store.configure(self.layout, record, config)
        if record.same_build(old) and plugin_store.maps_pinned(self.layout, old):
            return False, old
        rebuilds = self._check_users(name, record) if old is not None else []
        # Every program this change compiles, asked for at once and before
        # anything changes (a host that does not compile gets them from the controller).
        self.toolchain.require(plugin_store.trial_sources(self.layout, record) + rebuilds)
        # Verified before anything is stored (also in check mode, which loads
        # and drops a throwaway program: nothing stays).
        plugin_store.verify(self.toolchain, self.layout, record)
        if self.check_mode:
            return True, record
        created = plugin_store.pin_maps(self.layout, record)
        crash_point("after_map_pin")
        self.registry.plugins[name] = record
        self.save()
        # Dispatchers that use this plugin are rebuilt with its new code, or
        # with its new maps when the pins were lost (a reboot, a manual rm).
        if old is not None and (old.link_sha256 != record.link_sha256 or old.config_data != record.config_data
                                or created):
            try:
                for dname in self.dispatchers_using(name):
                    self.converge_dispatcher(dname, force=created)
            except BaseException:
                # The verifier refused the new code in a dispatcher: keep the old
                # code on record (what the running chains were built from).
                self.registry.plugins[name] = old
                self.save()
                for m in set(record.maps) - set(old.maps):
                    remove_bpffs_tree(self.layout.plugin_map_pin(name, m))
                raise
        return True, record

    def _check_users(self, name, record):
        """New code for a hooked plugin must still fit every dispatcher using it
        (functions present, signatures right, no symbol clash); refuse before
        anything is stored rather than leave a recipe that cannot be built.
        Returns the generated C ([(name, text)]) their rebuilds compile."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import planner
        plugins = dict(self.registry.plugins)
        plugins[name] = record
        sources = []
        for dname in self.dispatchers_using(name):
            request = self.registry.dispatchers[dname].request
            try:
                chain, _warnings = planner.solve(dname, request, plugins)
                mode = planner.resolve_mode(request.mode, self._mode_facts(request, plugins))
                if mode in ("link", "inline"):
                    planner.check_link_conflicts(request, chain, plugins)
            except DatapathError as exc:
                raise DatapathError("plugin '%s' is used by dispatcher '%s', which its new code would break: %s"
                                    % (name, dname, exc))
            inputs = planner.build_inputs(planner.program_family(request.attach), chain, request.main, plugins, mode,
                                          planner.final_hooks(request), request.stats)
            sources += _dispatcher().generated_sources(inputs, plugins)
        return sources

    def dispatchers_using(self, plugin):
        return self.registry.dispatchers_using(plugin)

    def remove_plugin(self, name, force=False):
        from ansible_collections.ebpf.datapath.plugins.module_utils import plugin_store
        if name not in self.registry.plugins and not os.path.exists(self.layout.plugin_dir(name)):
            return False
        users = self.registry.hooks_using_plugin(name)
        if users and not force:
            raise DatapathError(
                "plugin '%s' is still hooked (%s); remove those hooks first or set force: true"
                % (name, ", ".join("%s:%s.%s" % (d, h.hook, h.function) for d, h in users)))
        if self.check_mode:
            return True
        for dname in sorted(set(d for d, _hook in users)):
            request = self.registry.dispatchers[dname].request
            main = request.main if request.main is not None and request.main.plugin != name else None
            self._converge(dname, request.replace(hooks=[h for h in request.hooks if h.plugin != name], main=main))
        self.registry.plugins.pop(name, None)
        self.save()
        plugin_store.remove(self.layout, name)
        self._tidy()
        return True

    # ------------------------------------------------------------ dispatchers
    def ensure_dispatcher(self, spec):
        """Create or update dispatcher spec['name'] (a module's options) and converge it."""
        old = self.registry.dispatchers.get(spec["name"])
        request = DispatcherRequest.from_spec(spec, old.request if old is not None else None)
        return self._converge(spec["name"], request)

    def converge_dispatcher(self, name, force=False):
        """Make the kernel run the recorded request of dispatcher name.

        force rebuilds even when the running generation matches (its plugin maps
        were re-pinned, so it no longer shares them with their pins).
        Returns dict(changed, before, after, generation, mode, chain, prog_id).
        """
        return self._converge(name, self.registry.dispatchers[name].request, force=force)

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

    def _converge(self, name, request, force=False):
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
        try:
            return self._apply(plan)
        except _InlineRefused as refused:
            # mode auto: the chain does not build inline (the verifier, a jump
            # too far...). Nothing changed; the next mode is built instead and
            # the refusal recorded, so a rerun does not try again.
            plan = self.plan(name, request, force=force,
                             inline_refused={"fingerprint": plan.fingerprint, "reason": str(refused.error)})
            self.warnings.append("dispatcher %s: mode auto built %s, not inline: %s" % (name, plan.mode, refused.error))
            return self._apply(plan)

    def _mode_facts(self, request, plugins=None):
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
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachPoint, backend_for
        facts = self._mode_facts(request)
        if old is None:
            return facts
        ap = AttachPoint.of(old.request)
        if old.attachment is not None:
            facts.running_prog_id = backend_for(ap, old.attachment).running_prog_id(old.attachment)
        if facts.running_prog_id is None and old.pending is not None:
            facts.adoptable = self._find_pending(ap, old)
        current = old.current_generation()
        facts.current_pinned = current is not None and os.path.exists(current.prog_pin)
        return facts

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
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachError, backend_for
        prog_id = disp.pending.prog_id
        try:
            record = disp.attachment
            if record is None:
                record = backend_for(ap).find(prog_id)
            if record is None:
                return None
            candidate = record.with_program(prog_id)
            if backend_for(ap, candidate).running_prog_id(candidate) != prog_id:
                return None
        except AttachError:
            return None
        return candidate

    def _apply(self, plan):
        """Build, swap and record what plan says."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import planner
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachPoint, backend_for
        name, request, number = plan.name, plan.request, plan.generation
        old = self.registry.dispatchers.get(name)
        disp = planner.record_before_swap(plan, old)
        prog_pin = self.layout.generation_prog_pin(name, number)
        # A host that does not compile asks for every object now, before it changes anything.
        disp_mod = _dispatcher()
        self.toolchain.require(disp_mod.generated_sources(plan.build, self.registry.plugins))
        try:
            built = disp_mod.build(plan.build, self.registry.plugins, self.toolchain, self.layout, name, prog_pin)
        except BaseException as exc:
            self._discard_generation(name, number)
            if plan.mode == "inline" and request.mode == "auto" and isinstance(exc, DatapathError):
                raise _InlineRefused(exc)
            raise
        crash_point("after_pin")
        prog_id = _prog_id(built.fd)
        ap = AttachPoint.of(request)
        old_where = old.request.where_json() if plan.move_from is not None else None
        try:
            attachment = self._swap_in(disp, ap, plan.base_attachment, built.fd, number, prog_id, plan.move_from,
                                       old_where)
        except BaseException as exc:
            built.close()
            self._discard_generation(name, number)
            self._restore_record(name, old)
            if isinstance(exc, Exception):
                raise DatapathError("attaching dispatcher '%s' failed; the running chain is unchanged: %s"
                                    % (name, exc))
            raise
        built.close()

        disp = planner.record_after_swap(plan, disp, attachment, prog_id, prog_pin)
        if plan.move_from is not None:
            # The old place stays on record until it is released: a run killed
            # before that releases it next time (_release_old_place).
            disp.pending = Pending(number, prog_id, plan.move_from, old_where)
        self.registry.dispatchers[name] = disp
        self.save()
        if plan.move_from is not None:
            crash_point("before_release")
            # Attach the new place first (done), then release the old one.
            backend_for(AttachPoint.of(old.request), plan.move_from).detach(plan.move_from)
            disp.pending = None
            self.save()
        for gone in plan.release:
            remove_bpffs_tree(self.layout.generation_dir(name, gone))
        result = plan.result()
        result["prog_id"] = prog_id
        return result

    def _restore_record(self, name, old):
        """Put back the record a failed change replaced (and its write-ahead record away)."""
        if old is None:
            self.registry.dispatchers.pop(name, None)
        else:
            self.registry.dispatchers[name] = old
        self.save()

    def _swap_in(self, disp, ap, base, prog_fd, number, prog_id, old_attachment=None, old_where=None):
        """Put program prog_fd (generation number) at ap with one operation:
        swap it into base (our attachment running now), or attach it anew.
        Returns the attachment record.

        Write-ahead first: should this run die between the swap and the
        caller's save, the next run finds the attach point running this program
        and knows it is ours (see _find_pending).
        """
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import backend_for
        disp.pending = Pending(number, prog_id, old_attachment, old_where)
        disp.high_water = max(disp.high_water, number)
        self.registry.dispatchers[disp.name] = disp
        self.save(crash_at="while_saving_ahead")
        if base is not None:
            attachment = backend_for(ap, base).swap(base, prog_fd)
        else:
            if disp.attachment is not None:
                # Our attachment is gone (reboot, someone detached it): start over.
                backend_for(ap, disp.attachment).detach(disp.attachment)
            attachment = backend_for(ap).attach(prog_fd, self.layout.link_pin(disp.name, number),
                                                position=disp.request.position)
        crash_point("after_swap")
        return attachment

    def remove_dispatcher(self, name):
        from ansible_collections.ebpf.datapath.plugins.module_utils import planner
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachPoint, backend_for
        disp = self.registry.dispatchers.get(name)
        if disp is None:
            leftover = os.path.exists(self.layout.dispatcher_dir(name))
            if leftover and not self.check_mode:
                remove_bpffs_tree(self.layout.dispatcher_dir(name))
            return {"changed": leftover, "before": "", "after": ""}
        before = planner.describe_dispatcher(disp)
        if self.check_mode:
            return {"changed": True, "before": before, "after": ""}
        if disp.attachment is not None:
            backend_for(AttachPoint.of(disp.request), disp.attachment).detach(disp.attachment)
        remove_bpffs_tree(self.layout.dispatcher_dir(name))
        del self.registry.dispatchers[name]
        self.save()
        self._tidy()
        return {"changed": True, "before": before, "after": ""}

    # -------------------------------------------------------------- rollback
    def rollback(self, name, number=None):
        """Make a kept generation of dispatcher name the running one again, with
        one atomic swap to its pinned program, and restore its request.

        number None means the newest kept generation older than the current one.
        Returns dict(changed, before, after, from, to).
        """
        from ansible_collections.ebpf.datapath.plugins.module_utils import planner
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachPoint, backend_for
        from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
        disp = self.registry.dispatchers.get(name)
        if disp is None:
            raise DatapathError("unknown dispatcher '%s'" % name)
        target = planner.rollback_target(disp, number)
        ap = AttachPoint.of(disp.request)
        running = backend_for(ap, disp.attachment).running_prog_id(disp.attachment) if disp.attachment else None
        fd, target_prog_id, pin_error = None, None, ""
        try:
            fd = libbpf.obj_get(target.prog_pin)
            target_prog_id = libbpf.prog_info(fd).id
        except libbpf.BpfError as exc:
            pin_error = str(exc)
        try:
            plan = planner.plan_rollback(disp, target, self.registry.plugins, running, target_prog_id, pin_error)
            if self.check_mode or not plan.changed:
                return plan.result()
            work = disp.replace(generations=list(disp.generations))
            try:
                attachment = self._swap_in(work, ap, planner.swap_base(disp.attachment, running), fd,
                                           target.number, target.prog_id)
            except Exception as exc:
                self._restore_record(name, disp)
                raise DatapathError("rolling dispatcher '%s' back failed; the running chain is unchanged: %s"
                                    % (name, exc))
        finally:
            if fd is not None:
                libbpf.close_fd(fd)
        work = planner.record_after_rollback(work, target, attachment)
        self.registry.dispatchers[name] = work
        self.save()
        return plan.result()

    # --------------------------------------------------------------- restore
    def restore(self):
        """Bring back, after a reboot or a lost bpffs, everything the registry
        records: plugin maps pinned, every dispatcher built and attached.
        Generations whose pins are gone are forgotten (only the running chain is
        rebuilt; its number is new). Returns dict(changed, plugins: [...],
        dispatchers: [...])."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import plugin_store
        repinned = []
        for name, record in sorted(self.registry.plugins.items()):
            if plugin_store.maps_pinned(self.layout, record):
                continue
            repinned.append(name)
            if not self.check_mode:
                plugin_store.pin_maps(self.layout, record)
        results = []
        for name, disp in sorted(self.registry.dispatchers.items()):
            gone = [g.number for g in disp.generations if not os.path.exists(g.prog_pin)]
            if gone and not self.check_mode:
                self.registry.dispatchers[name] = disp.replace(
                    generations=[g for g in disp.generations if g.number not in gone])
                self.save()
            force = any(p in repinned for p in disp.request.plugins())
            result = self.converge_dispatcher(name, force=force)
            results.append(dict(result, name=name))
        return {"changed": bool(repinned) or any(r["changed"] for r in results),
                "plugins": repinned, "dispatchers": results}

    # ----------------------------------------------------------------- hooks
    def set_hook(self, dispatcher, entry, present=True):
        """Add, update or remove one hook entry and converge the dispatcher."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import planner
        disp = self.registry.dispatchers.get(dispatcher)
        if disp is None:
            raise DatapathError("unknown dispatcher '%s'; create it first with ebpf.datapath.dispatcher"
                                % dispatcher)
        hook = Hook.normalise(entry)
        hooks = [h for h in disp.request.hooks if h.key != hook.key]
        if present:
            if hook.plugin not in self.registry.plugins:
                raise DatapathError("unknown plugin '%s'; add it first with ebpf.datapath.datapath_plugin"
                                    % hook.plugin)
            hooks.append(hook)
        hooks = sorted_hooks(hooks)
        if hooks == disp.request.hooks:
            # Nothing to record; still converge, so a lost attachment comes back.
            if disp.generation:
                return self.converge_dispatcher(dispatcher)
            text = planner.describe_dispatcher(disp)
            return {"changed": False, "before": text, "after": text, "generation": disp.generation,
                    "chain": disp.chain.to_json()}
        result = self._converge(dispatcher, disp.request.replace(hooks=hooks))
        result["changed"] = True
        return result

    # ------------------------------------------------------------------ facts
    def facts(self):
        """A read-only view of the registry, with kernel liveness."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import planner
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachPoint, backend_for
        dispatchers = []
        for name, disp in sorted(self.registry.dispatchers.items()):
            running = None
            if disp.attachment is not None:
                try:
                    running = backend_for(AttachPoint.of(disp.request), disp.attachment).running_prog_id(
                        disp.attachment)
                except Exception as exc:  # facts must not fail on one broken attach point
                    self.warnings.append("dispatcher %s: %s" % (name, exc))
            current = disp.current_generation()
            request = disp.request
            dispatchers.append({
                "name": name,
                "attach": request.attach,
                "interface": request.interface,
                "netns": request.netns,
                "mode": request.mode,
                "mode_effective": disp.mode_effective,
                "tc_backend": disp.attachment.backend if disp.attachment is not None else None,
                "main": request.main.to_json() if request.main is not None else None,
                "hooks": [h.to_json() for h in request.hooks],
                "chain": disp.chain.to_json(),
                "generation": disp.generation,
                "generations": [{"number": g.number, "prog_id": g.prog_id, "chain": g.chain.to_json(),
                                 "current": g.number == disp.generation, "pinned": os.path.exists(g.prog_pin)}
                                for g in disp.generations],
                "attached": running is not None and current is not None and running == current.prog_id,
                "prog_id": running,
                "attachment": disp.attachment.to_json() if disp.attachment is not None else None,
                "text": planner.describe_dispatcher(disp),
            })
        plugins = []
        for name, record in sorted(self.registry.plugins.items()):
            plugins.append({
                "name": name,
                "source": record.source,
                "functions": sorted(record.functions),
                "maps": dict((m, self.layout.plugin_map_pin(name, m)) for m in record.maps),
                "used_by": self.dispatchers_using(name),
            })
        return {"dispatchers": dispatchers, "plugins": plugins}


class _InlineRefused(Exception):
    """An inline build that mode auto tried failed (carries the error)."""

    def __init__(self, error):
        super(_InlineRefused, self).__init__(str(error))
        self.error = error


def _dispatcher():
    """dispatcher.py, imported when a run builds (a no-op rerun of a plugin
    does not: module start-up counts on every task)."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher
    return dispatcher


def _prog_id(fd):
    from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import prog_info
    return prog_info(fd).id
