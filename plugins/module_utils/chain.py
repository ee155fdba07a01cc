# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ordering solver: hook entries + constraints -> chain.

A *hook entry* is one plugin function bound to one hook (``pre`` or ``post``) of one
dispatcher::

    {"plugin": "acl", "function": "check", "priority": 50,
     "constraints": [{"anchor": "before", "plugin": "counter"}]}

* ``priority`` (int, default 50) breaks ties between entries that the constraints leave
  free: **lower runs earlier**; equal priorities fall back to plugin name, then function
  name. So the chain never depends on the order in which hooks were declared, and a rerun
  with the same recipe yields the same chain (idempotence).
* ``constraints`` is a list in our form ``{anchor: before|after, plugin: NAME}`` or Cilium's
  ``{order: BEFORE|AFTER, plugin: NAME}`` (values case-insensitive). ``{anchor: before,
  plugin: X}`` on entry E means E runs before every function of plugin X at this hook;
  ``after`` means after every one of them.

The solver is Kahn's topological sort in which the next entry taken, among those whose
constraints are all satisfied, is the smallest by (priority, plugin, function): a heap
keeps it O((V + E) log V). A constraint on a plugin that has no function at this hook is
ignored with a warning (as in Cilium) or is an error when ``strict``. A cycle is an error
that spells one cycle out plugin by plugin.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import heapq
from collections import namedtuple

from ansible.module_utils.six.moves.collections_abc import Mapping

from ansible_collections.ebpf.datapath.plugins.module_utils.defaults import DEFAULT_PRIORITY  # noqa: F401 (one home)
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError

HOOKS = ("pre", "post")

# keys of a constraint in either form (ours: anchor, Cilium's: order)
_CONSTRAINT_KEYS = ("anchor", "order", "plugin")
_DIRECTIONS = ("before", "after")

Constraint = namedtuple("Constraint", ["order", "plugin"])
Solution = namedtuple("Solution", ["order", "warnings"])


class ChainError(DatapathError, ValueError):
    """Base of the solver's errors; the message is meant for the operator."""


class ConstraintError(ChainError):
    """A malformed hook entry or constraint, or (when strict) a constraint on an absent plugin."""


class CycleError(ChainError):
    """The constraints contradict each other.

    ``cycle`` is the list of plugins along the cycle, closed (first == last), exactly as
    the message spells it; ``entries`` is the same cycle as (plugin, function) pairs
    (closed too), for when a plugin has several functions at the hook.
    """

    def __init__(self, message, cycle, entries):
        super(CycleError, self).__init__(message)
        self.cycle = cycle
        self.entries = entries


def _describe(value):
    return "%r (%s)" % (value, type(value).__name__)


def normalize_constraint(constraint, owner=None):
    """One constraint in either accepted form -> Constraint(order, plugin).

    ``order`` is ``'before'`` or ``'after'``. ``owner`` is the plugin of the entry that
    carries the constraint; when given, a constraint naming it is refused.
    Keys whose value is None count as absent (Ansible fills unset suboptions with None).
    """
    if not isinstance(constraint, Mapping):
        raise ConstraintError(
            "a constraint must be a mapping like {anchor: before, plugin: NAME}, got %s" % _describe(constraint))
    given = dict((k, v) for k, v in constraint.items() if v is not None)
    extra = sorted(str(k) for k in given if k not in _CONSTRAINT_KEYS)
    if extra:
        raise ConstraintError(
            "constraint %r has unknown key(s) %s; a constraint has only 'anchor' (or Cilium's 'order') "
            "and 'plugin'" % (dict(constraint), ", ".join(repr(k) for k in extra)))
    if "plugin" not in given:
        raise ConstraintError(
            "constraint %r names no plugin; add plugin: NAME (the plugin to order against)" % (dict(constraint),))
    plugin = given["plugin"]
    if not isinstance(plugin, str) or not plugin:
        raise ConstraintError(
            "constraint %r: plugin must be a non-empty string, got %s" % (dict(constraint), _describe(plugin)))
    directions = []
    for key in ("anchor", "order"):
        if key in given:
            value = given[key]
            if not isinstance(value, str) or value.strip().lower() not in _DIRECTIONS:
                raise ConstraintError(
                    "constraint %r: unknown %s value %r; use before or after" % (dict(constraint), key, value))
            directions.append((key, value.strip().lower()))
    if not directions:
        raise ConstraintError(
            "constraint %r says neither before nor after; add anchor: before|after (or order: BEFORE|AFTER)"
            % (dict(constraint),))
    if len(directions) == 2 and directions[0][1] != directions[1][1]:
        raise ConstraintError(
            "constraint %r: anchor says %s but order says %s; give only one of them"
            % (dict(constraint), directions[0][1], directions[1][1]))
    if owner is not None and plugin == owner:
        raise ConstraintError("plugin %s cannot be ordered relative to itself; remove the constraint %r"
                              % (plugin, dict(constraint)))
    return Constraint(directions[0][1], plugin)


def _entry_fields(entry, position):
    """(plugin, function, priority, constraints) of one hook entry, checked."""
    if not isinstance(entry, Mapping):
        raise ConstraintError("hook entry #%d must be a mapping with plugin and function, got %s"
                              % (position, _describe(entry)))
    plugin = entry.get("plugin")
    function = entry.get("function")
    for key, value in (("plugin", plugin), ("function", function)):
        if not isinstance(value, str) or not value:
            raise ConstraintError("hook entry #%d: %s must be a non-empty string, got %s"
                                  % (position, key, _describe(value)))
    priority = entry.get("priority")
    if priority is None:
        priority = DEFAULT_PRIORITY
    # bool is an int subclass; True as a priority is a mistake, not 1
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConstraintError("hook entry %s.%s: priority must be an integer (lower runs earlier), got %s"
                              % (plugin, function, _describe(priority)))
    constraints = entry.get("constraints")
    if constraints is None:
        constraints = []
    # only sequences: a set would make the order of warnings depend on hashing
    if not isinstance(constraints, (list, tuple)):
        raise ConstraintError("hook entry %s.%s: constraints must be a list of {anchor, plugin} mappings, got %s"
                              % (plugin, function, _describe(constraints)))
    return plugin, function, priority, list(constraints)


def solve(entries, strict=False):
    """Order the hook entries of ONE hook of one dispatcher.

    Returns Solution(order=[(plugin, function), ...], warnings=[str, ...]).
    The result depends only on the set of entries, not on their order in ``entries``.
    Raises ConstraintError for malformed input (or, when ``strict``, a constraint on a
    plugin absent from this hook) and CycleError when the constraints form a cycle.
    """
    fields = [_entry_fields(e, i) for i, e in enumerate(entries)]
    # Node ids are ranks in (priority, plugin, function) order, so the heap holds plain
    # ints and "smallest id" is "should run first".
    fields.sort(key=lambda f: (f[2], f[0], f[1]))
    keys = [(f[0], f[1]) for f in fields]
    by_plugin = {}
    for node, (plugin, function) in enumerate(keys):
        by_plugin.setdefault(plugin, []).append(node)
    if len(set(keys)) != len(keys):
        seen = set()
        for key in keys:
            if key in seen:
                raise ConstraintError("function %s.%s is hooked more than once at this hook; keep one entry"
                                      % key)
            seen.add(key)

    succ = [set() for _key in keys]
    warnings = []
    warned = set()
    # Entries are visited in rank order and constraints in their given order, so the
    # warnings are deterministic too.
    for node, (plugin, function, _priority, constraints) in enumerate(fields):
        for index, raw in enumerate(constraints):
            try:
                constraint = normalize_constraint(raw, owner=plugin)
            except ConstraintError as exc:
                raise ConstraintError("hook entry %s.%s, constraint #%d: %s" % (plugin, function, index + 1, exc))
            others = by_plugin.get(constraint.plugin)
            if others is None:
                if strict:
                    raise ConstraintError(
                        "constraint of '%s' on absent plugin '%s': '%s' has no function at this hook; hook it "
                        "first or remove the constraint (strict constraints are on)"
                        % (plugin, constraint.plugin, constraint.plugin))
                message = "constraint of '%s' on absent plugin '%s' ignored" % (plugin, constraint.plugin)
                if message not in warned:
                    warned.add(message)
                    warnings.append(message)
                continue
            if constraint.order == "before":
                succ[node].update(others)
            else:
                for other in others:
                    succ[other].add(node)

    indegree = [0] * len(keys)
    for targets in succ:
        for target in targets:
            indegree[target] += 1
    ready = [node for node, degree in enumerate(indegree) if degree == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for target in succ[node]:
            indegree[target] -= 1
            if indegree[target] == 0:
                heapq.heappush(ready, target)
    if len(order) != len(keys):
        _raise_cycle(keys, succ, indegree, by_plugin)
    return Solution([keys[node] for node in order], warnings)


def _raise_cycle(keys, succ, indegree, by_plugin):
    """Spell out one cycle among the entries Kahn's algorithm could not place.

    Every such entry still has a predecessor that is also unplaced, so walking
    predecessors (always the smallest) from the smallest unplaced entry must repeat;
    the repeated stretch, read forwards, is a cycle. It is rotated to start at its
    smallest entry so the message is the same whatever the input order.
    """
    remaining = [node for node, degree in enumerate(indegree) if degree > 0]
    alive = set(remaining)
    pred = dict((node, []) for node in remaining)
    for node in remaining:
        for target in succ[node]:
            if target in alive:
                pred[target].append(node)
    walk = [remaining[0]]
    step = {remaining[0]: 0}
    while True:
        node = min(pred[walk[-1]])
        if node in step:
            loop = walk[step[node]:]
            break
        step[node] = len(walk)
        walk.append(node)
    loop.reverse()  # we walked backwards along edges
    start = loop.index(min(loop))
    loop = loop[start:] + loop[:start]
    loop.append(loop[0])
    entries = [keys[node] for node in loop]
    plugins = [plugin for plugin, _function in entries]
    message = "dependency cycle: " + " -> ".join(plugins)
    if any(len(by_plugin[p]) > 1 for p in plugins):
        message += " (functions: %s)" % " -> ".join("%s.%s" % e for e in entries)
    raise CycleError(message, plugins, entries)


def solve_dispatcher(hooks, strict=False):
    """Solve both hooks of one dispatcher.

    ``hooks`` is the list of hook entries of the dispatcher, each with a ``hook`` key
    (``pre`` or ``post``). Returns {'pre': [(plugin, function)...], 'post': [...],
    'warnings': [...]}; warnings and errors name the hook they come from.
    """
    split = dict((hook, []) for hook in HOOKS)
    for position, entry in enumerate(hooks):
        hook = entry.get("hook") if isinstance(entry, Mapping) else None
        if hook not in split:
            raise ConstraintError("hook entry #%d: hook must be one of %s, got %r"
                                  % (position, ", ".join(HOOKS), hook))
        split[hook].append(entry)
    result = {"warnings": []}
    for hook in HOOKS:
        try:
            solution = solve(split[hook], strict=strict)
        except CycleError as exc:
            raise CycleError("%s hook: %s" % (hook, exc), exc.cycle, exc.entries)
        except ConstraintError as exc:
            raise ConstraintError("%s hook: %s" % (hook, exc))
        result[hook] = solution.order
        result["warnings"].extend("%s hook: %s" % (hook, w) for w in solution.warnings)
    return result
