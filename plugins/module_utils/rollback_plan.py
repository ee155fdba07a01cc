# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning a rollback: which kept generation a rollback goes to, whether
going there is possible and a change (``RollbackPlan``), and the record once
it runs again.

Pure, like planner.py, whose descriptions it uses: the engine hands over what
the kernel runs and what the target's pin holds (converge_apply.rollback).
Kept apart from planner.py because a no-op rerun, which plans every run,
never rolls back, and under Ansible every file a run imports is compiled again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.planner import describe, describe_dispatcher
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Record


class RollbackPlan(Record):
    """What rolling back to a kept generation would do."""

    FIELDS = ("name", "changed", "target", "current", "before", "after", "running_prog_id")

    def __init__(self, name, changed, target, current, before, after, running_prog_id):
        self.name = name
        self.changed = changed
        self.target = target
        self.current = current
        self.before = before
        self.after = after
        self.running_prog_id = running_prog_id

    def result(self):
        return {"name": self.name, "changed": self.changed, "from": self.current, "to": self.target.number,
                "before": self.before, "after": self.after}


def record_after_rollback(disp, target, attachment):
    """The record once generation target runs again: its request restored."""
    return disp.replace(attachment=attachment, pending=None, generation=target.number, chain=target.chain,
                        mode_effective=target.mode, generations=list(disp.generations),
                        request=disp.request.with_generation_request(target.request))


def rollback_target(disp, number=None):
    """The kept generation a rollback goes to: number, or (None) the newest
    kept one older than the running one."""
    kept = sorted(g.number for g in disp.generations)
    if number is None:
        older = [n for n in kept if disp.generation is None or n < disp.generation]
        if not older:
            raise DatapathError(
                "dispatcher '%s' has no generation older than %s to roll back to (kept: %s)"
                % (disp.name, disp.generation, ", ".join(map(str, kept)) or "none"))
        number = older[-1]
    target = disp.kept(number)
    if target is None:
        raise DatapathError("dispatcher '%s' has no generation %s; kept generations: %s (raise keep_generations "
                            "to keep more)" % (disp.name, number, ", ".join(map(str, kept)) or "none"))
    return target


def plan_rollback(disp, target, plugins, running_prog_id, target_prog_id, target_pin_error=""):
    """A RollbackPlan to generation target. running_prog_id: what our attachment
    runs now; target_prog_id: the program behind the target's pin (None when the
    pin is gone, target_pin_error saying why)."""
    before = describe_dispatcher(disp)
    after = describe(disp.name, disp.request, target.mode, target.chain, target.number)
    if target.number == disp.generation and running_prog_id is not None and running_prog_id == target.prog_id:
        return RollbackPlan(disp.name, False, target, disp.generation, before, before, running_prog_id)
    missing = sorted(target.plugins() - set(plugins))
    if missing:
        raise DatapathError("generation %s of dispatcher '%s' uses plugin(s) %s, removed since; add them again "
                            "with ebpf.datapath.datapath_plugin first" % (target.number, disp.name, ", ".join(missing)))
    if target.request is None:
        raise DatapathError("generation %s of dispatcher '%s' was recorded by an older version of the "
                            "collection without its request; it cannot be rolled back to" % (target.number, disp.name))
    if target_prog_id is None:
        raise DatapathError("generation %s of dispatcher '%s' is no longer pinned at %s (%s); after a reboot only "
                            "the current generation is rebuilt"
                            % (target.number, disp.name, target.prog_pin, target_pin_error))
    if target_prog_id != target.prog_id:
        raise DatapathError("%s does not hold the program generation %s recorded; not rolling back to it"
                            % (target.prog_pin, target.number))
    return RollbackPlan(disp.name, True, target, disp.generation, before, after, running_prog_id)
