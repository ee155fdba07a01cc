# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wrong roots never touch a live datapath (issue 16), in the bad-input table's
before/after-snapshot form.

One running host serves the table (module scope): a lab with traffic, plugins
counter and dropper, dispatcher ``d-main`` at tcx ingress of b running
counter -> dropper, under the pair (bpffs_root, state_dir). Beside it: another
pair's roots (a plugin installed), a bpffs directory of someone else's (a map
pinned there), a state directory of someone else's. Each case runs the real
module with one wrong root; it must fail naming the cause, and afterwards every
pin (kernel id), registry.json byte for byte, the state files, every program
attached at the lab's interfaces, the other pair's and the foreign roots, the
paths the case named, and the top-level names a run writes in /, /etc, /tmp,
/var/lib and /sys/fs/bpf are as before; then packets prove the chain runs.

The system-directory cases (``state_dir: /``, ``/etc`` ...) run in a scratch
root in a private mount namespace (test_hardening_roots_scratch.py), so even
code that does the wrong thing cannot harm the machine.
"""

import math
import os
import secrets
import stat

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object

from hardening_host import (DROP_PORT, OPEN_PORT, TESTDATA, compile_testdata, diff_snapshots, fresh_host, pins,
                            snapshot, state_files)
from lab import remove_tree
from test_hardening_roots_scratch import SYSTEM_VIEW, in_scratch, written

MAIN_CHAIN = [
    {"plugin": "counter", "function": "count", "constraints": [{"anchor": "before", "plugin": "dropper"}]},
    {"plugin": "dropper", "function": "drop_port"},
]
# Names a run makes at the top of a root: seen at the top of a system directory,
# a run wrote there.
RUN_NAMES = ("lock", "registry.json", "objects", "cache", "pair.json", "plugins", "dispatchers", ".tmp-")


def tree(path):
    """{relative path: (mode, kind)} under path; None when it does not exist."""
    if not os.path.lexists(path):
        return None
    found = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [None] + dirnames + filenames:
            full = dirpath if name is None else os.path.join(dirpath, name)
            st = os.lstat(full)
            found[os.path.relpath(full, path)] = (oct(stat.S_IMODE(st.st_mode)), stat.S_IFMT(st.st_mode))
    return found


def system_view():
    """Mode of /, /etc, /tmp, /var/lib, /sys/fs/bpf and the names among their
    entries that a run would make (other tests run beside this one and add
    their own names, so only ours are compared)."""
    view = {}
    for path in SYSTEM_VIEW:
        st = os.stat(path)
        names = sorted(n for n in os.listdir(path) if n.startswith(RUN_NAMES) or n.startswith("pair-"))
        view[path] = (oct(stat.S_IMODE(st.st_mode)), names)
    return view


class World:
    def __init__(self, host, tmp):
        self.host = host
        self.lab = host.lab
        self.tmp = str(tmp)
        self.token = secrets.token_hex(3)
        self.interfaces = [(self.lab.ns_a, self.lab.if_a), (self.lab.ns_b, self.lab.if_b)]
        self.other_bpffs = "/sys/fs/bpf/dpt-%s-other" % self.token
        self.other_state = os.path.join(self.tmp, "other-state")
        self.foreign_bpffs = "/sys/fs/bpf/dpt-%s-foreign" % self.token
        self.foreign_state = os.path.join(self.tmp, "foreign-state")
        self.foreign_obj = None

    def path(self, name):
        return os.path.join(self.tmp, name)

    def main(self, **extra):
        args = dict(name="d-main", attach="tc_ingress", interface=self.lab.if_b, netns=self.lab.ns_b,
                    tc_backend="tcx", mode="link", plugins=MAIN_CHAIN)
        args.update(extra)
        return args

    def watched(self):
        """The roots beside the live pair that no case may change."""
        return {"other-pins": pins(self.other_bpffs), "other-state": state_files(self.other_state, skip=()),
                "foreign-bpffs": tree(self.foreign_bpffs), "foreign-state": tree(self.foreign_state),
                "system": system_view()}

    def traffic_still_flows(self):
        host = self.host
        c0, d0 = host.map_value("counter"), host.map_value("dropper", "dropped")
        assert host.burst(OPEN_PORT, 5) == 5
        assert host.burst(DROP_PORT, 3) == 0, "the dropper stopped dropping"
        assert host.map_value("counter") - c0 == 8, "the counter missed packets: the chain is not running"
        assert host.map_value("dropper", "dropped") - d0 == 3


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening-roots")
    with fresh_host(tmp) as host:
        w = World(host, tmp)
        try:
            host.plugin("counter", "counter.c")
            host.plugin("dropper", "dropper.c")
            host.run("dispatcher", **w.main())
            # Another pair, with a plugin of its own.
            host.run("datapath_plugin", name="twin", src=os.path.join(TESTDATA, "counter_twin.c"),
                     bpffs_root=w.other_bpffs, state_dir=w.other_state)
            # Someone else's bpffs directory (a pinned map) and state directory.
            os.mkdir(w.foreign_bpffs, 0o700)
            w.foreign_obj = bpf_object.BpfObject.open_file(compile_testdata("foreign.c"), name="foreign")
            w.foreign_obj.load()
            w.foreign_obj.map("calls").pin(os.path.join(w.foreign_bpffs, "calls"))
            os.mkdir(w.foreign_state, 0o700)
            with open(os.path.join(w.foreign_state, "notes.txt"), "w") as handle:
                handle.write("not ebpf.datapath's\n")
            os.mkdir(w.path("empty-state"), 0o700)
            os.mkdir(w.path("open-state"), 0o700)
            os.chmod(w.path("open-state"), 0o777)
            with open(w.path("a-file"), "w") as handle:
                handle.write("a file\n")
            w.traffic_still_flows()
            yield w
        finally:
            if w.foreign_obj is not None:
                w.foreign_obj.close()
            for path in (w.other_bpffs, w.foreign_bpffs):
                remove_tree(path)


class Case:
    def __init__(self, case_id, module, build, words, untouched=()):
        self.id = case_id
        self.module = module
        self.build = build  # world -> module args (bpffs_root/state_dir default to the live pair's)
        self.words = words  # world -> words that must all appear in the message
        self.untouched = untouched  # world -> paths whose tree must not change (absent ones stay absent)


D, P = "dispatcher", "datapath_plugin"


def _typo_bpffs(w):
    return "/sys/fs/bpf/dpt-%s-typo" % w.token


CASES = [
    # The typo of issue 16: a state_dir that knows nothing beside a live bpffs_root.
    Case("fresh-state-dir-beside-live-bpffs-root", D, lambda w: w.main(state_dir=w.path("typo-state")),
         lambda w: ["not a pair", w.host.bpffs_root, w.path("typo-state"), "does not exist yet",
                    "give " + w.host.state_dir], lambda w: [w.path("typo-state")]),
    Case("empty-state-dir-beside-live-bpffs-root", D, lambda w: w.main(state_dir=w.path("empty-state")),
         lambda w: ["not a pair", "is empty", "give " + w.host.state_dir], lambda w: [w.path("empty-state")]),
    Case("plugin-with-fresh-state-dir-beside-live-bpffs-root", P,
         lambda w: dict(name="counter", src=os.path.join(TESTDATA, "counter.c"), state_dir=w.path("typo-state")),
         lambda w: ["not a pair"], lambda w: [w.path("typo-state")]),
    Case("state-dir-of-another-pair", D, lambda w: w.main(state_dir=w.other_state),
         lambda w: ["not a pair", w.host.bpffs_root, w.other_state, "with bpffs_root " + w.other_bpffs]),
    Case("bpffs-root-of-another-pair", D, lambda w: w.main(bpffs_root=w.other_bpffs),
         lambda w: ["not a pair", w.other_bpffs, w.host.state_dir, "with state_dir " + w.other_state]),
    Case("fresh-bpffs-root-beside-live-state-dir", D, lambda w: w.main(bpffs_root=_typo_bpffs(w)),
         lambda w: ["not a pair", _typo_bpffs(w), "Give bpffs_root %s with this state_dir" % w.host.bpffs_root],
         lambda w: [_typo_bpffs(w)]),
    Case("bpffs-root-is-a-pinned-map", P,
         lambda w: dict(name="counter", src=os.path.join(TESTDATA, "counter.c"),
                        bpffs_root=os.path.join(w.host.bpffs_root, "plugins", "dropper", "maps", "dropped")),
         lambda w: ["is a pinned BPF map, not a directory", "not one of the pins"]),
    Case("bpffs-root-inside-live-bpffs-root", D, lambda w: w.main(bpffs_root=os.path.join(w.host.bpffs_root, "x"),
                                                                  state_dir=w.path("typo-state")),
         lambda w: ["inside %s" % w.host.bpffs_root], lambda w: [os.path.join(w.host.bpffs_root, "x")]),
    Case("bpffs-root-of-someone-else", D, lambda w: w.main(bpffs_root=w.foreign_bpffs, state_dir=w.path("new")),
         lambda w: ["bpffs_root", w.foreign_bpffs, "not ebpf.datapath's", "'calls'"], lambda w: [w.path("new")]),
    Case("state-dir-of-someone-else", D, lambda w: w.main(bpffs_root=_typo_bpffs(w), state_dir=w.foreign_state),
         lambda w: ["state_dir", w.foreign_state, "not ebpf.datapath's", "notes.txt"], lambda w: [_typo_bpffs(w)]),
    Case("state-dir-writable-by-others", D, lambda w: w.main(bpffs_root=_typo_bpffs(w),
                                                             state_dir=w.path("open-state")),
         lambda w: ["writable by group or others", "777"], lambda w: [w.path("open-state"), _typo_bpffs(w)]),
    Case("state-dir-is-a-file", D, lambda w: w.main(bpffs_root=_typo_bpffs(w), state_dir=w.path("a-file")),
         lambda w: ["regular file, not a directory"], lambda w: [_typo_bpffs(w)]),
    Case("lock-timeout-negative", D, lambda w: w.main(lock_timeout=-1), lambda w: ["lock_timeout -1.0",
                                                                                   "more than 0"]),
    Case("lock-timeout-nan", D, lambda w: w.main(lock_timeout="nan"), lambda w: ["lock_timeout nan"]),
    Case("lock-timeout-too-long", D, lambda w: w.main(lock_timeout=1e9), lambda w: ["lock_timeout", "at most 86400"]),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_wrong_roots_fail_clearly_and_change_nothing(world, case):
    host = world.host
    untouched = case.untouched(world) if case.untouched else []
    before = snapshot(host, world.interfaces)
    watched = world.watched()
    trees = dict((p, tree(p)) for p in untouched)
    res = host.run(case.module, _fail=True, **case.build(world))
    msg = res["msg"]
    missing = [w for w in case.words(world) if w.lower() not in msg.lower()]
    assert not missing, "message lacks %s: %s" % (missing, msg)
    assert "Traceback" not in msg and "MODULE FAILURE" not in msg, msg
    assert diff_snapshots(before, snapshot(host, world.interfaces)) == []
    assert world.watched() == watched
    assert dict((p, tree(p)) for p in untouched) == trees
    world.traffic_still_flows()


def test_the_table_covers_the_issue():
    assert len(set(c.id for c in CASES)) == len(CASES) >= 15
    assert math.isnan(float("nan"))  # Ansible turns "nan" into a float, which compares false with every bound


# ---------------------------------------------------------------- system directories, in a scratch root

COUNTER = os.path.join(TESTDATA, "counter.c")
SYSTEM_CASES = [
    ("/", "/sys/fs/bpf/ebpf-datapath", "state_dir / is a system directory"),
    ("/etc", "/sys/fs/bpf/ebpf-datapath", "state_dir /etc is a system directory"),
    ("/var/lib", "/sys/fs/bpf/ebpf-datapath", "state_dir /var/lib is a system directory"),
    ("/tmp", "/sys/fs/bpf/ebpf-datapath", "state_dir /tmp is a system directory"),
    ("/var/lib/ebpf-datapath", "/sys/fs/bpf", "bpffs_root /sys/fs/bpf is a system directory"),
]


@pytest.mark.parametrize("state_dir,bpffs_root,words", SYSTEM_CASES, ids=[c[0] + " " + c[1] for c in SYSTEM_CASES])
def test_system_directories_are_refused_and_left_alone(tmp_path, state_dir, bpffs_root, words):
    """Inside a scratch root (private mount namespace; /etc and /var/lib overlays,
    / and /tmp scratch directories, a new bpffs): the run fails naming the
    directory, and /, /etc, /tmp, /var/lib and /sys/fs/bpf are as they were."""
    host_before = system_view()
    scratch = tmp_path / "scratch"
    args = dict(name="counter", src=COUNTER, state_dir=state_dir, bpffs_root=bpffs_root)
    before, result, after = in_scratch(scratch, [["snapshot"], ["module", "datapath_plugin", args], ["snapshot"]])
    assert result.get("failed"), "a run with state_dir %s bpffs_root %s succeeded: %s" % (state_dir, bpffs_root, result)
    assert words in result["msg"], result["msg"]
    assert after == before
    assert written(scratch) == {"/": [], "/etc": [], "/var/lib": []}
    assert system_view() == host_before


# ---------------------------------------------------------------- adopting an install from before the markers

def _strip_markers(host):
    for name in os.listdir(host.bpffs_root):
        if name.startswith("pair-"):
            remove_tree(os.path.join(host.bpffs_root, name))
    os.unlink(os.path.join(host.state_dir, "pair.json"))


def test_an_install_without_markers_is_adopted_without_outage(tmp_path):
    """A registry and pins as the previous release left them (no markers): the
    next run proves the pair by the registry, claims it, and changes nothing
    else: same pins and kernel ids, same program attached, counters kept."""
    with fresh_host(tmp_path) as host:
        w = World(host, tmp_path)
        host.plugin("counter", "counter.c")
        host.plugin("dropper", "dropper.c")
        host.run("dispatcher", **w.main())
        w.traffic_still_flows()
        _strip_markers(host)
        before = snapshot(host, w.interfaces)
        counted = host.map_value("counter")
        res = host.run("dispatcher", **w.main())
        assert not res["changed"], res
        after = snapshot(host, w.interfaces)
        marker = [n for n in os.listdir(host.bpffs_root) if n.startswith("pair-")]
        assert len(marker) == 1
        assert [d for d in diff_snapshots(before, after) if not d.startswith(("pins pair-", "files pair.json"))] == []
        assert host.map_value("counter") == counted
        w.traffic_still_flows()
        # ... and from now on the pair is bound: a typo is refused.
        res = host.run("dispatcher", _fail=True, **w.main(state_dir=w.path("typo")))
        assert "not a pair" in res["msg"]
        w.traffic_still_flows()


def test_an_existing_state_dir_keeps_its_mode(tmp_path):
    """Modes are set only on directories the collection created: an existing,
    empty state_dir (here 0750, made by the operator) keeps its mode."""
    with fresh_host(tmp_path) as host:
        os.mkdir(host.state_dir, 0o750)
        host.plugin("counter", "counter.c")
        assert oct(stat.S_IMODE(os.stat(host.state_dir).st_mode)) == oct(0o750)


@pytest.mark.parametrize("killed", ["after-both-markers", "between-the-markers"])
def test_a_run_killed_during_its_claim_is_adopted(tmp_path, killed):
    """The state a run killed right after claiming leaves (both markers, nothing
    else), or killed between writing the two (state_dir's only): the next run
    claims what is missing and converges, with one pair."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import roots
    with fresh_host(tmp_path) as host:
        w = World(host, tmp_path)
        pair = roots.claim_roots(host.bpffs_root, host.state_dir)
        if killed == "between-the-markers":
            roots.remove_marker(host.bpffs_root, pair)
        host.plugin("counter", "counter.c")
        host.plugin("dropper", "dropper.c")
        host.run("dispatcher", **w.main())
        assert [n for n in os.listdir(host.bpffs_root) if n.startswith("pair-")] == ["pair-" + pair]
        assert roots.inspect_state_dir(host.state_dir).pair == pair
        w.traffic_still_flows()
