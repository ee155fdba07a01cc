# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every decision of the planner, without root: the records and the kernel
facts are built here by hand, exactly as the engine would hand them over.
Rollback planning (rollback_plan.py) is tested here too, on the records these
tests build."""

import copy
import hashlib

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import planner, rollback_plan
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.planner import KernelFacts
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import (
    ClsactAttachment, DispatcherRequest, FunctionRef, Hook, Pending, Plugin, TcxAttachment)

TC = "struct __sk_buff *"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def plugin(name, pre=("check",), post=(), symbols=None):
    functions = dict((f, {"params": [TC], "ret": "int"}) for f in pre)
    functions.update((f, {"params": [TC, "int"], "ret": "int"}) for f in post)
    symbols = symbols or dict((f, "dpp_%s__%s" % (name, f)) for f in functions)
    return Plugin(name, {"src": "/src/%s.c" % name, "sha256": sha(name)}, [], [], sha(name + ".plain"),
                  sha(name + ".link"), functions, ["counts"], symbols, {"dpp_%s__counts" % name: "counts"})


PLUGINS = {"acl": plugin("acl"), "counter": plugin("counter"), "audit": plugin("audit", pre=(), post=("note",))}


def request(*hooks, **kw):
    args = dict(attach="tc_ingress", interface="veth0", netns="ns1", tc_backend="tcx", mode="link",
                hooks=[Hook(p, f, h, priority=prio) for p, f, h, prio in hooks])
    args.update(kw)
    return DispatcherRequest(**args)


CHAIN_AC = (("acl", "check", "pre", 10), ("counter", "check", "pre", 20))
CHAIN_CA = (("acl", "check", "pre", 30), ("counter", "check", "pre", 20))
LINK = KernelFacts()


def tcx(prog_id, number=1):
    return TcxAttachment("veth0", "ns1", 7, "tcx_ingress", 900 + number, "/sys/fs/bpf/r/dispatchers/d/link-%d" % number,
                         prog_id, "dp_dispatcher")


def applied(plan, old=None, attachment=None, prog_id=None):
    """The record the engine saves once plan ran (planner.record_* are pure)."""
    prog_id = prog_id or 100 + plan.generation
    disp = planner.record_before_swap(plan, old)
    attachment = attachment or (plan.base_attachment.with_program(prog_id) if plan.base_attachment
                                else tcx(prog_id, plan.generation))
    return planner.record_after_swap(plan, disp, attachment, prog_id,
                                     "/sys/fs/bpf/r/dispatchers/d/gen-%d/prog" % plan.generation)


def running(disp):
    """The facts of a healthy host running disp's current generation."""
    return KernelFacts(running_prog_id=disp.attachment.prog_id, current_pinned=True)


def first(req=None):
    plan = planner.plan_dispatcher("d", None, req or request(*CHAIN_AC), PLUGINS, LINK)
    return applied(plan)


# ------------------------------------------------------------------ decisions

def test_a_new_dispatcher_gets_generation_1_and_an_attach():
    plan = planner.plan_dispatcher("d", None, request(*CHAIN_AC), PLUGINS, LINK)
    assert plan.changed and plan.generation == 1 and plan.mode == "link"
    assert plan.chain.pre == [("acl", "check"), ("counter", "check")]
    assert plan.base_attachment is None and plan.move_from is None and plan.release == []
    assert plan.before == "" and "generation 1" in plan.after and "acl.check -> counter.check" in plan.after


def test_what_to_build_is_data_a_controller_can_build_from():
    plan = planner.plan_dispatcher("d", None, request(*CHAIN_AC), PLUGINS, LINK)
    assert plan.build == {"template": planner.TEMPLATE_VERSION, "kind": "tc", "mode": "link",
                          "pre": [["acl", "check"], ["counter", "check"]], "post": [], "main": None,
                          "objects": {"acl": [sha("acl.plain"), sha("acl.link")],
                                      "counter": [sha("counter.plain"), sha("counter.link")]}}
    assert plan.fingerprint == planner.fingerprint(plan.build)


def test_the_same_request_on_a_healthy_host_changes_nothing():
    disp = first()
    plan = planner.plan_dispatcher("d", disp, request(*CHAIN_AC), PLUGINS, running(disp))
    assert not plan.changed and not plan.record_request
    assert plan.generation == 1 and plan.before == plan.after and plan.prog_id == disp.attachment.prog_id
    assert plan.result()["changed"] is False


def test_a_reorder_is_a_new_generation_swapped_into_our_attachment():
    disp = first()
    plan = planner.plan_dispatcher("d", disp, request(*CHAIN_CA), PLUGINS, running(disp))
    assert plan.changed and plan.generation == 2
    assert plan.chain.pre == [("counter", "check"), ("acl", "check")]
    assert plan.base_attachment == disp.attachment and plan.running_prog_id == disp.attachment.prog_id
    assert plan.release == [] and "generation 1" in plan.before and "generation 2" in plan.after


def test_generations_beyond_keep_are_released():
    disp = first()
    disp = applied(planner.plan_dispatcher("d", disp, request(*CHAIN_CA), PLUGINS, running(disp)), disp)
    plan = planner.plan_dispatcher("d", disp, request(*CHAIN_AC, keep_generations=2), PLUGINS, running(disp))
    assert plan.generation == 3 and plan.release == [1]
    after = applied(plan, disp)
    assert [g.number for g in after.generations] == [2, 3]


def test_removing_a_hook_builds_a_chain_without_its_plugin():
    disp = first()
    plan = planner.plan_dispatcher("d", disp, request(CHAIN_AC[1]), PLUGINS, running(disp))
    assert plan.changed and plan.chain.pre == [("counter", "check")]
    assert sorted(plan.build["objects"]) == ["counter"]


def test_bookkeeping_only_changes_are_recorded_without_a_build():
    disp = first()
    plan = planner.plan_dispatcher("d", disp, request(*CHAIN_AC, keep_generations=5), PLUGINS, running(disp))
    assert not plan.changed and plan.record_request and plan.build is None


def test_a_lost_attachment_is_attached_anew():
    disp = first()
    plan = planner.plan_dispatcher("d", disp, request(*CHAIN_AC), PLUGINS,
                                   KernelFacts(running_prog_id=None, current_pinned=True))
    assert plan.changed and plan.base_attachment is None and plan.generation == 2


def test_an_unpinned_running_generation_is_rebuilt():
    disp = first()
    facts = KernelFacts(running_prog_id=disp.attachment.prog_id, current_pinned=False)
    assert planner.plan_dispatcher("d", disp, request(*CHAIN_AC), PLUGINS, facts).changed


def test_force_rebuilds_an_unchanged_chain():
    disp = first()
    plan = planner.plan_dispatcher("d", disp, request(*CHAIN_AC), PLUGINS, running(disp), force=True)
    assert plan.changed and plan.base_attachment == disp.attachment


def test_new_plugin_code_changes_the_fingerprint():
    disp = first()
    plugins = dict(PLUGINS, acl=plugin("acl").replace(link_sha256=sha("acl.v2")))
    assert planner.plan_dispatcher("d", disp, request(*CHAIN_AC), plugins, running(disp)).changed


def test_moving_attaches_the_new_place_then_releases_the_old():
    disp = first()
    plan = planner.plan_dispatcher("d", disp, request(*CHAIN_AC, interface="veth1"), PLUGINS, running(disp))
    assert plan.changed and plan.move_from == disp.attachment and plan.base_attachment is None
    assert plan.generation == 2 and plan.release == [1]
    moved = applied(plan, disp)
    assert [g.number for g in moved.generations] == [2] and moved.request.interface == "veth1"


def test_adoption_after_a_crash_between_swap_and_save():
    """A clsact run killed after its swap: its filter runs the pending program."""
    disp = first(request(*CHAIN_AC, tc_backend="clsact"))
    disp = disp.replace(pending=Pending(2, 202), high_water=2)
    found = ClsactAttachment("veth0", "ns1", 7, 0xFFFFFFF2, 1, 1, 3, False, 202, "dp_dispatcher")
    facts = KernelFacts(running_prog_id=None, adoptable=found, current_pinned=True)
    plan = planner.plan_dispatcher("d", disp, request(*CHAIN_CA, tc_backend="clsact"), PLUGINS, facts)
    assert plan.changed and plan.adopt == found and plan.base_attachment == found and plan.running_prog_id == 202
    assert plan.generation == 3, "the killed run's number 2 is never used again"
    after = applied(plan, disp)
    assert after.pending is None and after.attachment.prog_id == 103 and after.high_water == 3


def test_our_link_running_an_unrecorded_program_is_swapped_from_what_it_runs():
    disp = first()
    plan = planner.plan_dispatcher("d", disp, request(*CHAIN_AC), PLUGINS,
                                   KernelFacts(running_prog_id=555, current_pinned=True))
    assert plan.changed and plan.base_attachment.prog_id == 555 and plan.base_attachment.link_pin


def test_generation_numbers_after_a_restore_are_new():
    """Applied 1 and 2, rolled back to 1, rebooted: every pin gone, so restore
    forgets the kept generations; the rebuilt chain is 3, not 2 again."""
    disp = first()
    disp = applied(planner.plan_dispatcher("d", disp, request(*CHAIN_CA), PLUGINS, running(disp)), disp)
    disp = rollback_plan.record_after_rollback(disp, disp.kept(1), disp.attachment.with_program(101))
    rebooted = disp.replace(generations=[])
    plan = planner.plan_dispatcher("d", rebooted, rebooted.request, PLUGINS, KernelFacts())
    assert plan.changed and plan.generation == 3


def test_the_planner_touches_none_of_its_inputs():
    disp = first()
    plugins = copy.deepcopy(PLUGINS)
    before = (disp.to_json(), dict((n, p.to_json()) for n, p in plugins.items()))
    for req in (request(*CHAIN_CA), request(*CHAIN_AC, interface="veth1"), request()):
        planner.plan_dispatcher("d", disp, req, plugins, running(disp))
    assert (disp.to_json(), dict((n, p.to_json()) for n, p in plugins.items())) == before


# ---------------------------------------------------------- refusals, modes

def test_mode_auto_follows_the_kernel():
    facts = KernelFacts(freplace=True)
    assert planner.plan_dispatcher("d", None, request(*CHAIN_AC, mode="auto"), PLUGINS, facts).mode == "freplace"
    assert planner.plan_dispatcher("d", None, request(*CHAIN_AC, mode="auto"), PLUGINS, KernelFacts()).mode == "link"


def test_freplace_on_a_kernel_without_ext_says_what_works():
    facts = KernelFacts(freplace=False, freplace_reason="EPERM")
    with pytest.raises(DatapathError) as err:
        planner.plan_dispatcher("d", None, request(*CHAIN_AC, mode="freplace"), PLUGINS, facts)
    assert "(EPERM)" in str(err.value) and "use mode: link" in str(err.value)


@pytest.mark.parametrize("hooks, main, words", [
    ((("ghost", "check", "pre", 1),), None, "names unknown plugin 'ghost'"),
    ((("acl", "nope", "pre", 1),), None, "plugin 'acl' has no global function 'nope'"),
    ((("audit", "note", "pre", 1),), None, "a pre hook at this attach point needs int note(struct __sk_buff *)"),
    ((), FunctionRef("audit", "note"), "main: function 'note'"),
])
def test_a_chain_that_cannot_be_built_is_refused(hooks, main, words):
    with pytest.raises(DatapathError) as err:
        planner.plan_dispatcher("d", None, request(*hooks, main=main), PLUGINS, LINK)
    assert words in str(err.value)


def test_prebuilt_objects_sharing_a_symbol_cannot_be_linked():
    plugins = dict(PLUGINS, a=plugin("a", symbols={"check": "check"}), b=plugin("b", symbols={"check": "check"}))
    req = request(("a", "check", "pre", 1), ("b", "check", "pre", 2))
    with pytest.raises(DatapathError, match="'a' and 'b' both define the global symbol 'check'"):
        planner.plan_dispatcher("d", None, req, plugins, LINK)
    assert planner.plan_dispatcher("d", None, req.replace(mode="auto"), plugins, KernelFacts(freplace=True)).changed


# ------------------------------------------------------------------- rollback

def two_generations():
    disp = first()
    return applied(planner.plan_dispatcher("d", disp, request(*CHAIN_CA), PLUGINS, running(disp)), disp)


def test_the_rollback_target_is_the_newest_older_generation():
    disp = two_generations()
    assert rollback_plan.rollback_target(disp).number == 1
    assert rollback_plan.rollback_target(disp, 2).number == 2
    with pytest.raises(DatapathError, match="has no generation 9; kept generations: 1, 2"):
        rollback_plan.rollback_target(disp, 9)
    with pytest.raises(DatapathError, match="no generation older than 1"):
        rollback_plan.rollback_target(first())


def test_a_rollback_swaps_to_the_pinned_program_and_restores_the_request():
    disp = two_generations()
    target = disp.kept(1)
    plan = rollback_plan.plan_rollback(disp, target, PLUGINS, disp.attachment.prog_id, target.prog_id)
    assert plan.changed and plan.result()["from"] == 2 and plan.result()["to"] == 1
    back = rollback_plan.record_after_rollback(disp, target, disp.attachment.with_program(target.prog_id))
    assert back.generation == 1 and back.request.hooks == request(*CHAIN_AC).hooks and back.high_water == 2
    again = rollback_plan.plan_rollback(back, target, PLUGINS, target.prog_id, target.prog_id)
    assert not again.changed and again.before == again.after


@pytest.mark.parametrize("case, words", [
    ("unpinned", "is no longer pinned"),
    ("other program", "does not hold the program generation 1 recorded"),
    ("plugin removed", "uses plugin(s) acl, removed since"),
    ("old record", "recorded by an older version"),
])
def test_a_rollback_that_cannot_work_is_refused(case, words):
    disp = two_generations()
    target = disp.kept(1)
    plugins, prog_id = PLUGINS, target.prog_id
    if case == "unpinned":
        prog_id = None
    elif case == "other program":
        prog_id = 999
    elif case == "plugin removed":
        plugins = dict((n, p) for n, p in PLUGINS.items() if n != "acl")
    else:
        target = target.replace(request=None)
    with pytest.raises(DatapathError) as err:
        rollback_plan.plan_rollback(disp, target, plugins, disp.attachment.prog_id, prog_id, "ENOENT")
    assert words in str(err.value)


def test_every_mode_resolves_with_its_reason():
    """mode -> (effective mode, why auto picked it), for each kernel and host."""
    ext = KernelFacts(freplace=True, inline=True)
    no_ext = KernelFacts(freplace=False, freplace_reason="EPERM", inline=False, inline_reason="plugin 'x' has no src")
    assert planner.resolve_mode_why("link", ext) == ("link", "")
    assert planner.resolve_mode_why("freplace", ext) == ("freplace", "")
    assert planner.resolve_mode_why("inline", ext) == ("inline", "")
    assert planner.resolve_mode_why("auto", ext)[0] == "inline"
    assert planner.resolve_mode_why("auto", ext, inline_refused="too long")[0] == "freplace"
    mode, why = planner.resolve_mode_why("auto", no_ext)
    assert mode == "link" and "plugin 'x' has no src" in why and "EPERM" in why
    for requested in ("freplace", "inline"):
        with pytest.raises(DatapathError):
            planner.resolve_mode_why(requested, no_ext)
    assert planner.resolve_mode("freplace", ext) == "freplace"
