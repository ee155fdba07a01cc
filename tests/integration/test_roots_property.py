# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property (issue 16): whatever pair of roots a run is given -- absent, empty,
ours, another pair's, someone else's, a system directory, a pin, a file,
nested in another pair's -- it never changes anything that is not its own and
never detaches a running dispatcher.

The host: a live pair ("theirs") whose dispatcher runs counter at tcx ingress
of a lab interface with traffic; our own pair ("ours", claimed, a plugin
installed); a bpffs directory and a state directory of someone else's. Each
example draws a bpffs_root kind and a state_dir kind and runs the real
datapath_plugin module (every run starts with the engine's orphan cleanup,
the step that unpinned a live dispatcher in issue 16). Examples with a system
directory run in a scratch root (private mount namespace, see
test_hardening_roots_scratch.py) where the host's other roots are bound in.

After every example: theirs is exactly as it was (every pin with its kernel
id, registry.json byte for byte, state files) and its dispatcher is attached
(same program id) and counts every packet; someone else's directories, the
roots the example was given when it was refused, and the names a run writes
at the top of /, /etc, /tmp, /var/lib and /sys/fs/bpf are unchanged. And the
run was accepted exactly when the roots are ours or both new: (ours, ours),
or bpffs_root and state_dir each absent or empty.
"""

import os
import secrets
import shutil

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object

from hardening_host import (TESTDATA, compile_testdata, fresh_host, pins, registry_bytes, run_raw, state_files,
                            tcx_progs)
from lab import remove_tree
from test_hardening_roots import system_view, tree
from test_hardening_roots_scratch import in_scratch, written

BPFFS_KINDS = ("absent", "empty", "ours", "theirs", "foreign", "system", "pin", "nested")
STATE_KINDS = ("absent", "empty", "ours", "theirs", "foreign", "system", "file")
SYSTEM_STATE = ("/", "/etc", "/var/lib", "/tmp")
EXAMPLES = int(os.environ.get("DPT_ROOTS_EXAMPLES", "120"))
SEEN = {"bpffs": set(), "state": set(), "accepted": 0, "refused": 0, "scratch": 0}


class Host:
    def __init__(self, host, tmp):
        self.host = host  # theirs: hardening_host.Host with the lab
        self.lab = host.lab
        self.tmp = str(tmp)
        self.token = secrets.token_hex(3)
        self.roots = os.path.join(self.tmp, "roots")  # every state_dir of the test lives here
        os.mkdir(self.roots, 0o700)
        self.ours_bpffs = "/sys/fs/bpf/dpt-%s-ours" % self.token
        self.ours_state = os.path.join(self.roots, "ours")
        self.foreign_bpffs = "/sys/fs/bpf/dpt-%s-foreign" % self.token
        self.foreign_state = os.path.join(self.roots, "foreign")
        self.made = []  # fresh bpffs directories, removed at the end
        self.n = 0
        self.foreign_obj = None

    def fresh(self, kind, what):
        self.n += 1
        if what == "bpffs":
            path = "/sys/fs/bpf/dpt-%s-%d" % (self.token, self.n)
            self.made.append(path)
        else:
            path = os.path.join(self.roots, "s%d" % self.n)
        if kind == "empty":
            os.mkdir(path, 0o700)
        return path

    def bpffs_root(self, kind, draw_system):
        theirs = self.host.bpffs_root
        return {
            "ours": lambda: self.ours_bpffs, "theirs": lambda: theirs, "foreign": lambda: self.foreign_bpffs,
            "system": lambda: "/sys/fs/bpf",
            "pin": lambda: os.path.join(theirs, "plugins", "counter", "maps", "counts"),
            "nested": lambda: os.path.join(theirs, "plugins"),
        }.get(kind, lambda: self.fresh(kind, "bpffs"))()

    def state_dir(self, kind, draw_system):
        if kind == "system":
            return draw_system
        if kind == "file":
            path = os.path.join(self.roots, "a-file")
            if not os.path.exists(path):
                with open(path, "w") as handle:
                    handle.write("a file\n")
            return path
        return {"ours": self.ours_state, "theirs": self.host.state_dir,
                "foreign": self.foreign_state}.get(kind) or self.fresh(kind, "state")

    def theirs(self):
        """Everything of theirs that must never change (the dispatcher's program id included)."""
        host = self.host
        return {"pins": pins(host.bpffs_root), "registry": registry_bytes(host.state_dir),
                "files": state_files(host.state_dir), "tcx": tcx_progs(self.lab, self.lab.ns_b, self.lab.if_b)}

    def others(self):
        return {"foreign-bpffs": tree(self.foreign_bpffs), "foreign-state": tree(self.foreign_state),
                "system": system_view()}

    def dispatcher_counts(self):
        before = self.host.map_value("counter")
        assert self.host.burst(8888, 3) == 3
        assert self.host.map_value("counter") - before == 3, "their dispatcher stopped counting"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roots-property")
    with fresh_host(tmp) as host:
        h = Host(host, tmp)
        lab = host.lab
        try:
            host.plugin("counter", "counter.c")
            host.run("dispatcher", name="d-theirs", attach="tc_ingress", interface=lab.if_b, netns=lab.ns_b,
                     tc_backend="tcx", mode="link", plugins=[{"plugin": "counter", "function": "count"}])
            host.run("datapath_plugin", name="mine", src=os.path.join(TESTDATA, "counter_twin.c"),
                     bpffs_root=h.ours_bpffs, state_dir=h.ours_state)
            os.mkdir(h.foreign_bpffs, 0o700)
            h.foreign_obj = bpf_object.BpfObject.open_file(compile_testdata("foreign.c"), name="foreign")
            h.foreign_obj.load()
            h.foreign_obj.map("calls").pin(os.path.join(h.foreign_bpffs, "calls"))
            os.mkdir(h.foreign_state, 0o700)
            with open(os.path.join(h.foreign_state, "notes.txt"), "w") as handle:
                handle.write("not ebpf.datapath's\n")
            h.dispatcher_counts()
            yield h
        finally:
            if h.foreign_obj is not None:
                h.foreign_obj.close()
            for path in [h.ours_bpffs, h.foreign_bpffs] + h.made:
                remove_tree(path)


def expected_accept(bpffs_kind, state_kind):
    return (bpffs_kind, state_kind) == ("ours", "ours") or (
        bpffs_kind in ("absent", "empty") and state_kind in ("absent", "empty"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bpffs_kind=st.sampled_from(BPFFS_KINDS), state_kind=st.sampled_from(STATE_KINDS),
       system_state=st.sampled_from(SYSTEM_STATE))
def test_any_roots_change_nothing_that_is_not_theirs(env, bpffs_kind, state_kind, system_state):
    # Both of their roots together are simply their pair, used as it should be.
    assume((bpffs_kind, state_kind) != ("theirs", "theirs"))
    bpffs_root = env.bpffs_root(bpffs_kind, None)
    state_dir = env.state_dir(state_kind, system_state)
    theirs, others = env.theirs(), env.others()
    system = ("/", "/etc", "/var/lib", "/tmp", "/sys/fs/bpf")
    given_roots = dict((p, tree(p)) for p in (bpffs_root, state_dir) if p not in system)
    args = dict(name="mine", src=os.path.join(TESTDATA, "counter_twin.c"), bpffs_root=bpffs_root,
                state_dir=state_dir)
    if "system" in (bpffs_kind, state_kind):
        scratch = os.path.join(env.tmp, "scratch-%d" % env.n)
        env.n += 1
        binds = [p for p in (env.host.bpffs_root, env.ours_bpffs, env.foreign_bpffs, env.roots, bpffs_root)
                 if p.startswith(("/sys/fs/bpf/", env.roots)) and os.path.isdir(p)]
        before, result, after = in_scratch(scratch, [["snapshot"], ["module", "datapath_plugin", args],
                                                     ["snapshot"]], binds=binds)
        assert after == before, "a system directory changed in the scratch root"
        assert written(scratch) == {"/": [], "/etc": [], "/var/lib": []}
        shutil.rmtree(scratch, ignore_errors=True)
        SEEN["scratch"] += 1
    else:
        result = run_raw("datapath_plugin", args).result
    assert result is not None, "the module printed no result"
    accepted = not result.get("failed")
    SEEN["bpffs"].add(bpffs_kind)
    SEEN["state"].add(state_kind)
    SEEN["accepted" if accepted else "refused"] += 1
    assert accepted == expected_accept(bpffs_kind, state_kind), (bpffs_kind, state_kind, result.get("msg"))
    if not accepted:
        msg = result["msg"]
        assert "Traceback" not in msg and (bpffs_root in msg or state_dir in msg or "lock_timeout" in msg), msg
        assert dict((p, tree(p)) for p in given_roots) == given_roots, "a refused run changed the roots it was given"
    assert env.theirs() == theirs, "their pair changed (%s, %s): %s" % (bpffs_kind, state_kind, result)
    assert env.others() == others
    env.dispatcher_counts()
    if accepted and bpffs_kind in ("absent", "empty"):
        remove_tree(bpffs_root)  # a new pair of this example's own: not kept for the next


def test_the_property_met_every_kind():
    """The examples drawn above covered every kind of root, both outcomes and
    the scratch root (run in the same session as the property)."""
    if not SEEN["bpffs"]:
        pytest.skip("the property test did not run in this session")
    assert SEEN["bpffs"] == set(BPFFS_KINDS) and SEEN["state"] == set(STATE_KINDS), SEEN
    assert SEEN["accepted"] and SEEN["refused"] and SEEN["scratch"], SEEN
