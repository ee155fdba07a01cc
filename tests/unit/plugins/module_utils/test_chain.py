# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ordering solver: examples first, then properties on random graphs."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.ebpf.datapath.plugins.module_utils.chain import (
    DEFAULT_PRIORITY,
    ChainError,
    Constraint,
    ConstraintError,
    CycleError,
    normalize_constraint,
    solve,
    solve_dispatcher,
)


def entry(plugin, function="fn", priority=None, constraints=None, hook=None):
    e = {"plugin": plugin, "function": function}
    if priority is not None:
        e["priority"] = priority
    if constraints is not None:
        e["constraints"] = constraints
    if hook is not None:
        e["hook"] = hook
    return e


def before(plugin):
    return {"anchor": "before", "plugin": plugin}


def after(plugin):
    return {"anchor": "after", "plugin": plugin}


# ----------------------------------------------------------------- examples


def test_empty_hook_gives_empty_chain():
    assert solve([]) == ([], [])


def test_unconstrained_entries_run_by_name():
    result = solve([entry("c"), entry("a"), entry("b")])
    assert result.order == [("a", "fn"), ("b", "fn"), ("c", "fn")]
    assert result.warnings == []


def test_lower_priority_runs_earlier_and_beats_name():
    result = solve([entry("a", priority=60), entry("b"), entry("c", priority=10)])
    assert DEFAULT_PRIORITY == 50
    assert result.order == [("c", "fn"), ("b", "fn"), ("a", "fn")]


def test_priority_tie_falls_back_to_plugin_then_function():
    result = solve([
        entry("b", "x", priority=5), entry("a", "z", priority=5),
        entry("a", "y", priority=5), entry("c", "a", priority=7),
    ])
    assert result.order == [("a", "y"), ("a", "z"), ("b", "x"), ("c", "a")]


def test_none_priority_and_constraints_mean_defaults():
    result = solve([
        {"plugin": "b", "function": "f", "priority": None, "constraints": None},
        {"plugin": "a", "function": "f", "priority": 50},
    ])
    assert result.order == [("a", "f"), ("b", "f")]


def test_before_constraint_overrides_name_and_priority():
    result = solve([entry("a", priority=1), entry("z", priority=99, constraints=[before("a")])])
    assert result.order == [("z", "fn"), ("a", "fn")]


def test_after_constraint_overrides_name():
    result = solve([entry("a", constraints=[after("b")]), entry("b")])
    assert result.order == [("b", "fn"), ("a", "fn")]


@pytest.mark.parametrize("form", [
    {"anchor": "before", "plugin": "a"},
    {"anchor": "BEFORE", "plugin": "a"},
    {"order": "BEFORE", "plugin": "a"},
    {"order": "before", "plugin": "a"},
    {"order": "Before", "plugin": "a"},
    {"anchor": "before", "order": "BEFORE", "plugin": "a"},
    {"anchor": "before", "order": None, "plugin": "a"},  # Ansible fills unset suboptions with None
])
def test_both_constraint_forms_mean_the_same(form):
    assert normalize_constraint(form) == Constraint("before", "a")
    assert solve([entry("a"), entry("b", constraints=[form])]).order == [("b", "fn"), ("a", "fn")]


def test_cilium_after_form():
    assert normalize_constraint({"order": "AFTER", "plugin": "x"}) == Constraint("after", "x")
    result = solve([entry("a", constraints=[{"order": "AFTER", "plugin": "b"}]), entry("b")])
    assert result.order == [("b", "fn"), ("a", "fn")]


def test_constraint_applies_to_every_function_of_the_named_plugin():
    result = solve([entry("a", "f1"), entry("a", "f2"), entry("a", "f3"), entry("z", "g", constraints=[before("a")])])
    assert result.order == [("z", "g"), ("a", "f1"), ("a", "f2"), ("a", "f3")]


def test_constraint_binds_only_the_entry_that_carries_it():
    # b.one runs after a, b.two runs before a: satisfiable, not a cycle
    result = solve([entry("a"), entry("b", "one", constraints=[after("a")]),
                    entry("b", "two", constraints=[before("a")])])
    assert result.order == [("b", "two"), ("a", "fn"), ("b", "one")]


def test_absent_plugin_constraint_is_ignored_with_a_warning():
    result = solve([entry("a", constraints=[before("z")]), entry("b", constraints=[after("y")])])
    assert result.order == [("a", "fn"), ("b", "fn")]
    assert result.warnings == [
        "constraint of 'a' on absent plugin 'z' ignored",
        "constraint of 'b' on absent plugin 'y' ignored",
    ]


def test_absent_plugin_warning_is_given_once():
    result = solve([entry("a", "f", constraints=[before("z")]), entry("a", "g", constraints=[after("z")])])
    assert result.warnings == ["constraint of 'a' on absent plugin 'z' ignored"]


def test_absent_plugin_constraint_is_an_error_when_strict():
    with pytest.raises(ConstraintError) as info:
        solve([entry("a", constraints=[before("z")])], strict=True)
    assert "constraint of 'a' on absent plugin 'z'" in str(info.value)
    assert "strict" in str(info.value)


def test_strict_accepts_present_plugins():
    assert solve([entry("a", constraints=[after("b")]), entry("b")], strict=True).order == [("b", "fn"), ("a", "fn")]


def test_self_constraint_is_an_error():
    with pytest.raises(ConstraintError) as info:
        solve([entry("a", constraints=[before("a")]), entry("b")])
    assert "plugin a cannot be ordered relative to itself" in str(info.value)
    assert "hook entry a.fn" in str(info.value)


def test_self_constraint_error_from_normalize_with_owner():
    with pytest.raises(ConstraintError, match="plugin x cannot be ordered relative to itself"):
        normalize_constraint({"order": "AFTER", "plugin": "x"}, owner="x")


@pytest.mark.parametrize("constraint, fragment", [
    (["before", "a"], "must be a mapping"),
    ("before a", "must be a mapping"),
    (None, "must be a mapping"),
    ({"anchor": "before"}, "names no plugin; add plugin: NAME"),
    ({"anchor": "before", "plugin": None}, "names no plugin"),
    ({"anchor": "before", "plugin": ""}, "plugin must be a non-empty string"),
    ({"anchor": "before", "plugin": 7}, "plugin must be a non-empty string, got 7 (int)"),
    ({"anchor": "before", "plugin": ["a"]}, "plugin must be a non-empty string"),
    ({"plugin": "a"}, "says neither before nor after; add anchor: before|after"),
    ({"anchor": "first", "plugin": "a"}, "unknown anchor value 'first'; use before or after"),
    ({"anchor": "", "plugin": "a"}, "unknown anchor value ''"),
    ({"anchor": 1, "plugin": "a"}, "unknown anchor value 1"),
    ({"order": "AROUND", "plugin": "a"}, "unknown order value 'AROUND'"),
    ({"anchor": "before", "order": "AFTER", "plugin": "a"}, "anchor says before but order says after; give only one"),
    ({"anchor": "before", "plugin": "a", "priority": 3}, "unknown key(s) 'priority'"),
    ({"anchor": "before", "plugin": "a", "x": 1, "y": 2}, "unknown key(s) 'x', 'y'"),
])
def test_malformed_constraints_say_what_to_fix(constraint, fragment):
    with pytest.raises(ConstraintError) as info:
        normalize_constraint(constraint)
    assert fragment in str(info.value)
    with pytest.raises(ConstraintError) as info:
        solve([entry("a"), entry("b", "g", constraints=[after("a"), constraint])])
    assert str(info.value).startswith("hook entry b.g, constraint #2: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize("bad, fragment", [
    ("a", "hook entry #0 must be a mapping"),
    ({"function": "f"}, "plugin must be a non-empty string"),
    ({"plugin": "a"}, "function must be a non-empty string"),
    ({"plugin": "a", "function": 3}, "function must be a non-empty string"),
    ({"plugin": "a", "function": "f", "priority": "high"}, "priority must be an integer"),
    ({"plugin": "a", "function": "f", "priority": True}, "priority must be an integer"),
    ({"plugin": "a", "function": "f", "priority": 1.5}, "priority must be an integer"),
    ({"plugin": "a", "function": "f", "constraints": before("b")}, "constraints must be a list"),
    ({"plugin": "a", "function": "f", "constraints": "b"}, "constraints must be a list"),
])
def test_malformed_entries(bad, fragment):
    with pytest.raises(ConstraintError) as info:
        solve([bad])
    assert fragment in str(info.value)


def test_duplicate_entry_is_an_error():
    with pytest.raises(ConstraintError) as info:
        solve([entry("a", "f"), entry("b"), entry("a", "f", priority=3)])
    assert "function a.f is hooked more than once at this hook" in str(info.value)


def test_two_cycle_message():
    with pytest.raises(CycleError) as info:
        solve([entry("b", constraints=[before("a")]), entry("a", constraints=[before("b")])])
    assert str(info.value) == "dependency cycle: a -> b -> a"
    assert info.value.cycle == ["a", "b", "a"]


def test_three_cycle_message_is_exact_and_independent_of_input_order():
    entries = [
        entry("a", constraints=[before("b")]),
        entry("b", constraints=[before("c")]),
        entry("c", constraints=[before("a")]),
        entry("d"),
    ]
    for _round in range(10):
        random.shuffle(entries)
        with pytest.raises(CycleError) as info:
            solve(entries)
        assert str(info.value) == "dependency cycle: a -> b -> c -> a"
        assert info.value.cycle == ["a", "b", "c", "a"]
        assert info.value.entries == [("a", "fn"), ("b", "fn"), ("c", "fn"), ("a", "fn")]


def test_cycle_mixing_both_forms_is_spelled_in_edge_direction():
    # c after b, a after c, b after a: edges b->c, c->a, a->b
    entries = [
        entry("a", constraints=[{"order": "AFTER", "plugin": "c"}]),
        entry("b", constraints=[after("a")]),
        entry("c", constraints=[after("b")]),
    ]
    with pytest.raises(CycleError) as info:
        solve(entries)
    assert str(info.value) == "dependency cycle: a -> b -> c -> a"


def test_cycle_behind_a_placeable_prefix_and_with_a_stuck_tail():
    # x runs first, then a <-> b loop, and t (after b) is stuck behind it
    entries = [
        entry("x", priority=1),
        entry("a", constraints=[after("x"), before("b")]),
        entry("b", constraints=[before("a")]),
        entry("t", priority=0, constraints=[after("b")]),
    ]
    with pytest.raises(CycleError) as info:
        solve(entries)
    assert str(info.value) == "dependency cycle: a -> b -> a"


def test_cycle_names_functions_when_a_plugin_has_several():
    entries = [entry("a", "f"), entry("a", "g", constraints=[after("b")]), entry("b", "h", constraints=[after("a")])]
    with pytest.raises(CycleError) as info:
        solve(entries)
    # a.f -> b.h (b after all of a), b.h -> a.g (a.g after b): a.f is not on a cycle
    assert str(info.value) == "dependency cycle: a -> b -> a (functions: a.g -> b.h -> a.g)"


def test_errors_share_a_base_class():
    assert issubclass(CycleError, ChainError) and issubclass(ConstraintError, ChainError)
    assert issubclass(ChainError, ValueError)


def test_solve_dispatcher_splits_by_hook():
    hooks = [
        entry("b", hook="pre"),
        entry("a", hook="pre", constraints=[after("b")]),
        entry("c", hook="post", constraints=[before("a")]),  # a is not at post: warning
        entry("a", "g", hook="post", priority=90),
    ]
    result = solve_dispatcher(hooks)
    assert result == {
        "pre": [("b", "fn"), ("a", "fn")],
        "post": [("c", "fn"), ("a", "g")],
        "warnings": [],
    }
    result = solve_dispatcher([entry("c", hook="post", constraints=[before("z")])])
    assert result == {"pre": [], "post": [("c", "fn")],
                      "warnings": ["post hook: constraint of 'c' on absent plugin 'z' ignored"]}


def test_solve_dispatcher_same_function_at_both_hooks_is_fine():
    result = solve_dispatcher([entry("a", hook="pre"), entry("a", hook="post")])
    assert result["pre"] == [("a", "fn")] and result["post"] == [("a", "fn")]


def test_solve_dispatcher_errors_name_the_hook():
    with pytest.raises(CycleError) as info:
        solve_dispatcher([entry("a", hook="post", constraints=[before("b")]),
                          entry("b", hook="post", constraints=[before("a")])])
    assert str(info.value) == "post hook: dependency cycle: a -> b -> a"
    assert info.value.cycle == ["a", "b", "a"]
    with pytest.raises(ConstraintError, match="^pre hook: constraint of 'a' on absent plugin 'z'"):
        solve_dispatcher([entry("a", hook="pre", constraints=[before("z")])], strict=True)
    with pytest.raises(ConstraintError, match="hook must be one of pre, post, got 'main'"):
        solve_dispatcher([entry("a", hook="main")])
    with pytest.raises(ConstraintError, match="hook must be one of pre, post, got None"):
        solve_dispatcher([entry("a")])


def test_large_chain_solves():
    # size, not time: a chain of 10 000 entries with 50 000 constraints, all honoured
    rng = random.Random(7)
    n = 10000
    names = ["p%05d" % i for i in range(n)]
    entries = [entry(name, priority=rng.randrange(100), constraints=[]) for name in names]
    edges = set()
    while len(edges) < 50000:
        i, j = rng.randrange(n), rng.randrange(n)
        if i < j:  # edges follow index order, so the graph is acyclic
            edges.add((i, j))
            entries[i]["constraints"].append(before(names[j]))
    result = solve(entries)
    position = dict((p, k) for k, (p, _f) in enumerate(result.order))
    assert len(position) == n
    assert all(position[names[i]] < position[names[j]] for i, j in edges)


# ----------------------------------------------------------------- properties

PLUGINS = ["a", "b", "c", "d", "e", "f", "g"]


@st.composite
def hook_entries(draw):
    """Random entries at one hook: a few plugins, 1-3 functions each, random constraints
    (some on plugins that are absent), small priorities so ties happen."""
    plugins = draw(st.lists(st.sampled_from(PLUGINS), min_size=1, max_size=len(PLUGINS), unique=True))
    entries = []
    for plugin in plugins:
        functions = draw(st.lists(st.sampled_from(["f", "g", "h"]), min_size=1, max_size=3, unique=True))
        for function in functions:
            others = [p for p in PLUGINS + ["zz"] if p != plugin]
            constraints = draw(st.lists(
                st.builds(lambda key, way, other: {key: way, "plugin": other},
                          st.sampled_from(["anchor", "order"]),
                          st.sampled_from(["before", "after", "BEFORE", "After"]),
                          st.sampled_from(others)),
                max_size=2))
            e = {"plugin": plugin, "function": function, "constraints": constraints}
            priority = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=3)))
            if priority is not None:
                e["priority"] = priority
            entries.append(e)
    return entries


def oracle_edges(entries):
    """The graph the constraints describe, built independently of the solver."""
    keys = [(e["plugin"], e["function"]) for e in entries]
    edges = set()
    for e in entries:
        me = (e["plugin"], e["function"])
        for c in e.get("constraints", []):
            way = (c.get("anchor") or c.get("order")).lower()
            for other in keys:
                if other[0] == c["plugin"]:
                    edges.add((me, other) if way == "before" else (other, me))
    return keys, edges


def oracle_has_cycle(keys, edges):
    succ = dict((k, []) for k in keys)
    for u, v in edges:
        succ[u].append(v)
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict((k, WHITE) for k in keys)

    def visit(node):
        colour[node] = GREY
        for nxt in succ[node]:
            if colour[nxt] == GREY or (colour[nxt] == WHITE and visit(nxt)):
                return True
        colour[node] = BLACK
        return False

    return any(colour[k] == WHITE and visit(k) for k in keys)


def outcome(entries):
    try:
        return solve(entries)
    except CycleError as exc:
        return ("cycle", str(exc), exc.cycle, exc.entries)


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(hook_entries())
def test_property_solution_or_real_cycle(entries):
    keys, edges = oracle_edges(entries)
    if oracle_has_cycle(keys, edges):
        with pytest.raises(CycleError) as info:
            solve(entries)
        walk = info.value.entries
        assert len(walk) >= 3 and walk[0] == walk[-1]
        assert len(set(walk[:-1])) == len(walk) - 1  # a simple cycle
        for u, v in zip(walk, walk[1:]):
            assert (u, v) in edges
        assert info.value.cycle == [p for p, _f in walk]
        assert str(info.value).startswith("dependency cycle: " + " -> ".join(info.value.cycle))
    else:
        result = solve(entries)
        assert sorted(result.order) == sorted(keys)
        assert len(result.order) == len(set(result.order))
        position = dict((k, i) for i, k in enumerate(result.order))
        for u, v in edges:
            assert position[u] < position[v]
        # every constraint on an absent plugin is warned about, nothing else is
        present = set(p for p, _f in keys)
        expected = set("constraint of '%s' on absent plugin '%s' ignored" % (e["plugin"], c["plugin"])
                       for e in entries for c in e["constraints"] if c["plugin"] not in present)
        assert set(result.warnings) == expected


@SETTINGS
@given(hook_entries())
def test_property_greedy_smallest_ready_entry(entries):
    """Each step takes the smallest (priority, plugin, function) entry whose
    predecessors have all run: checked by replaying the output."""
    keys, edges = oracle_edges(entries)
    if oracle_has_cycle(keys, edges):
        return
    rank = dict(((e["plugin"], e["function"]), (e.get("priority", DEFAULT_PRIORITY), e["plugin"], e["function"]))
                for e in entries)
    preds = dict((k, set()) for k in keys)
    for u, v in edges:
        preds[v].add(u)
    done = set()
    for chosen in solve(entries).order:
        ready = [k for k in keys if k not in done and preds[k] <= done]
        assert chosen == min(ready, key=rank.get)
        done.add(chosen)


@SETTINGS
@given(hook_entries(), st.randoms(use_true_random=False))
def test_property_independent_of_input_order(entries, rng):
    first = outcome(entries)
    shuffled = list(entries)
    rng.shuffle(shuffled)
    assert outcome(shuffled) == first


@SETTINGS
@given(st.lists(st.lists(st.integers(min_value=0, max_value=7), max_size=3), min_size=2, max_size=8))
def test_property_one_function_per_plugin_cycle_is_a_plugin_cycle(succ_lists):
    """With one function per plugin, the reported plugin list is itself a cycle of the
    plugin graph (each consecutive pair an edge)."""
    n = len(succ_lists)
    names = ["n%d" % i for i in range(n)]
    entries = []
    edges = set()
    for i, targets in enumerate(succ_lists):
        targets = sorted(set(t for t in targets if t < n and t != i))
        entries.append(entry(names[i], constraints=[before(names[t]) for t in targets]))
        edges.update((names[i], names[t]) for t in targets)
    has_cycle = oracle_has_cycle([(p, "fn") for p in names], set(((u, "fn"), (v, "fn")) for u, v in edges))
    if has_cycle:
        with pytest.raises(CycleError) as info:
            solve(entries)
        cycle = info.value.cycle
        assert cycle[0] == cycle[-1]
        assert all((u, v) in edges for u, v in zip(cycle, cycle[1:]))
        assert str(info.value) == "dependency cycle: " + " -> ".join(cycle)
    else:
        assert sorted(p for p, _f in solve(entries).order) == sorted(names)
