# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Changing a dispatcher (converge.Engine): apply a plan (build the new
program, swap it in with one operation, record the generation), roll back to a
kept generation, remove a dispatcher, restore everything after a reboot, set
one hook. Kept apart from converge.py, which plans: a no-op rerun compiles
none of this.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf, planner, rollback_plan
from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachPoint, attached_prog_id, backend_for
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.faults import crash_point
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Hook, Pending, sorted_hooks
from ansible_collections.ebpf.datapath.plugins.module_utils.state import remove_bpffs_tree, remove_empty_dirs


class InlineRefused(Exception):
    """An inline build that mode auto tried failed (carries the error)."""

    def __init__(self, error):
        super(InlineRefused, self).__init__(str(error))
        self.error = error


def apply(engine, plan):
    """Build, swap and record what plan says."""
    name, request, number = plan.name, plan.request, plan.generation
    old = engine.registry.dispatchers.get(name)
    disp = planner.record_before_swap(plan, old)
    prog_pin = engine.layout.generation_prog_pin(name, number)
    # A host that does not compile asks for every object now, before it changes anything.
    disp_mod = _dispatcher()
    engine.toolchain.require(disp_mod.generated_sources(plan.build, engine.registry.plugins))
    try:
        built = disp_mod.build(plan.build, engine.registry.plugins, engine.toolchain, engine.layout, name, prog_pin)
    except BaseException as exc:
        discard_generation(engine, name, number)
        if plan.mode == "inline" and request.mode == "auto" and isinstance(exc, DatapathError):
            raise InlineRefused(exc)
        raise
    crash_point("after_pin")
    prog_id = _prog_id(built.fd)
    ap = AttachPoint.of(request)
    old_where = old.request.where_json() if plan.move_from is not None else None
    try:
        attachment = swap_in(engine, disp, ap, plan.base_attachment, built.fd, number, prog_id, plan.move_from,
                             old_where)
    except BaseException as exc:
        built.close()
        discard_generation(engine, name, number)
        restore_record(engine, name, old)
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
    engine.registry.dispatchers[name] = disp
    engine.save()
    if plan.move_from is not None:
        crash_point("before_release")
        # Attach the new place first (done), then release the old one.
        backend_for(AttachPoint.of(old.request), plan.move_from).detach(plan.move_from)
        disp.pending = None
        engine.save()
    for gone in plan.release:
        remove_bpffs_tree(engine.layout.generation_dir(name, gone))
    killed = old.pending.generation if old is not None and old.pending is not None else None
    if killed is not None and killed != number and all(g.number != killed for g in disp.generations):
        # The generation of a run killed between its swap and its save
        # (Engine._remove_orphans kept it while it ran), replaced now.
        remove_bpffs_tree(engine.layout.generation_dir(name, killed))
    result = plan.result()
    result["prog_id"] = prog_id
    return result


def discard_generation(engine, name, number):
    """Unpin a generation that never ran, and the directories it alone needed."""
    remove_bpffs_tree(engine.layout.generation_dir(name, number))
    remove_empty_dirs(engine.layout.dispatcher_dir(name), engine.layout.bpffs_root)
    engine.tidy()


def restore_record(engine, name, old):
    """Put back the record a failed change replaced (and its write-ahead record away)."""
    if old is None:
        engine.registry.dispatchers.pop(name, None)
    else:
        engine.registry.dispatchers[name] = old
    engine.save()


def swap_in(engine, disp, ap, base, prog_fd, number, prog_id, old_attachment=None, old_where=None):
    """Put program prog_fd (generation number) at ap with one operation:
    swap it into base (our attachment running now), or attach it anew.
    Returns the attachment record.

    Write-ahead first: should this run die between the swap and the
    caller's save, the next run finds the attach point running this program
    and knows it is ours (see _find_pending).
    """
    disp.pending = Pending(number, prog_id, old_attachment, old_where)
    disp.high_water = max(disp.high_water, number)
    engine.registry.dispatchers[disp.name] = disp
    engine.save(crash_at="while_saving_ahead")
    if base is not None:
        attachment = backend_for(ap, base).swap(base, prog_fd)
    else:
        if disp.attachment is not None:
            # Our attachment is gone (reboot, someone detached it): start over.
            backend_for(ap, disp.attachment).detach(disp.attachment)
        attachment = backend_for(ap).attach(prog_fd, engine.layout.link_pin(disp.name, number),
                                            position=disp.request.position)
    crash_point("after_swap")
    return attachment


def remove_dispatcher(engine, name):
    disp = engine.registry.dispatchers.get(name)
    if disp is None:
        leftover = os.path.exists(engine.layout.dispatcher_dir(name))
        if leftover and not engine.check_mode:
            remove_bpffs_tree(engine.layout.dispatcher_dir(name))
        return {"changed": leftover, "before": "", "after": ""}
    before = planner.describe_dispatcher(disp)
    if engine.check_mode:
        return {"changed": True, "before": before, "after": ""}
    if disp.attachment is not None:
        backend_for(AttachPoint.of(disp.request), disp.attachment).detach(disp.attachment)
    remove_bpffs_tree(engine.layout.dispatcher_dir(name))
    del engine.registry.dispatchers[name]
    engine.save()
    engine.tidy()
    return {"changed": True, "before": before, "after": ""}


def rollback(engine, name, number=None):
    """Make a kept generation of dispatcher name the running one again, with
    one atomic swap to its pinned program, and restore its request.

    number None means the newest kept generation older than the current one.
    Returns dict(changed, before, after, from, to).
    """
    disp = engine.registry.dispatchers.get(name)
    if disp is None:
        raise DatapathError("unknown dispatcher '%s'" % name)
    target = rollback_plan.rollback_target(disp, number)
    ap = AttachPoint.of(disp.request)
    running = attached_prog_id(ap, disp.attachment) if disp.attachment else None
    fd, target_prog_id, pin_error = None, None, ""
    try:
        fd = libbpf.obj_get(target.prog_pin)
        target_prog_id = libbpf.prog_info(fd).id
    except libbpf.BpfError as exc:
        pin_error = str(exc)
    try:
        plan = rollback_plan.plan_rollback(disp, target, engine.registry.plugins, running, target_prog_id, pin_error)
        if engine.check_mode or not plan.changed:
            return plan.result()
        work = disp.replace(generations=list(disp.generations))
        try:
            attachment = swap_in(engine, work, ap, planner.swap_base(disp.attachment, running), fd,
                                 target.number, target.prog_id)
        except Exception as exc:
            restore_record(engine, name, disp)
            raise DatapathError("rolling dispatcher '%s' back failed; the running chain is unchanged: %s"
                                % (name, exc))
    finally:
        if fd is not None:
            libbpf.close_fd(fd)
    work = rollback_plan.record_after_rollback(work, target, attachment)
    engine.registry.dispatchers[name] = work
    engine.save()
    return plan.result()


def restore(engine):
    """Bring back, after a reboot or a lost bpffs, everything the registry
    records: plugin maps pinned, every dispatcher built and attached.
    Generations whose pins are gone are forgotten (only the running chain is
    rebuilt; its number is new). Returns dict(changed, plugins: [...],
    dispatchers: [...])."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import plugin_load, plugin_store
    repinned = []
    for name, record in sorted(engine.registry.plugins.items()):
        if plugin_store.maps_pinned(engine.layout, record):
            continue
        repinned.append(name)
        if not engine.check_mode:
            plugin_load.pin_maps(engine.layout, record)
    results = []
    for name, disp in sorted(engine.registry.dispatchers.items()):
        gone = [g.number for g in disp.generations if not os.path.exists(g.prog_pin)]
        if gone and not engine.check_mode:
            engine.registry.dispatchers[name] = disp.replace(
                generations=[g for g in disp.generations if g.number not in gone])
            engine.save()
        force = any(p in repinned for p in disp.request.plugins())
        result = engine.converge_dispatcher(name, force=force)
        results.append(dict(result, name=name))
    return {"changed": bool(repinned) or any(r["changed"] for r in results),
            "plugins": repinned, "dispatchers": results}


def set_hook(engine, dispatcher, entry, present=True):
    """Add, update or remove one hook entry and converge the dispatcher."""
    disp = engine.registry.dispatchers.get(dispatcher)
    if disp is None:
        raise DatapathError("unknown dispatcher '%s'; create it first with ebpf.datapath.dispatcher"
                            % dispatcher)
    hook = Hook.normalise(entry)
    hooks = [h for h in disp.request.hooks if h.key != hook.key]
    if present:
        if hook.plugin not in engine.registry.plugins:
            raise DatapathError("unknown plugin '%s'; add it first with ebpf.datapath.datapath_plugin"
                                % hook.plugin)
        hooks.append(hook)
    hooks = sorted_hooks(hooks)
    if hooks == disp.request.hooks:
        # Nothing to record; still converge, so a lost attachment comes back.
        if disp.generation:
            return engine.converge_dispatcher(dispatcher)
        text = planner.describe_dispatcher(disp)
        return {"changed": False, "before": text, "after": text, "generation": disp.generation,
                "chain": disp.chain.to_json()}
    result = engine.converge_request(dispatcher, disp.request.replace(hooks=hooks))
    result["changed"] = True
    return result


def _dispatcher():
    """dispatcher.py, imported when a run builds."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher
    return dispatcher


def _prog_id(fd):
    return libbpf.prog_info(fd).id
