# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run SIGKILLed at any step of a chain change: the next run converges, nothing
leaks, and traffic never stops.

For each crash point of faults.py the host runs chain A (or B) with steady UDP
flowing from a to b through it; the module changing to the other chain kills
itself at that point (EBPF_DATAPATH_CRASH_AT: no JSON, SIGKILL), then the same
change runs again without it. Then:

* the host runs the requested chain: registry, datapath_info and the kernel's
  attached program agree;
* zero leaked: bpftool lists exactly the programs and links the registry
  records (keep_generations is 1, so one program per dispatcher) and bpffs
  holds exactly the recorded pins; at a clsact hook one filter of ours, in a
  Cilium slot our recorded program;
* traffic was never interrupted: the receiver got every datagram sent, and the
  counter plugin, which is in every chain, counted every one of them (a moment
  without our program would let packets through uncounted).

tcx runs every crash point; clsact, XDP and a Cilium custom-call slot (behind
the Cilium stand-in of test_cilium.py) the two where the attach point's own
state is in play: after the swap, and while the registry is being written. A first attachment
killed right after its swap, before anything recorded it, is the other case:
the next run must not mistake its own program for someone else's.
"""

import os

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import attach as att
from ansible_collections.ebpf.datapath.plugins.module_utils.faults import POINTS

from hardening_host import (TESTDATA, Stream, fresh_host, kernel_objects, run_crashing, tc_filters,
                            tcx_progs, wait_for_objects, xdp_progs)

PORT = 9999
# Where the backends differ: the points after which the attach point has changed
# (or the write-ahead record was being written). Earlier points never reach it.
LATE = ("after_swap", "while_saving")
# before_release is reached by a move only (test_a_killed_clsact_move_leaves_exactly_one_filter).
CHANGE_POINTS = tuple(p for p in POINTS if p != "before_release")
BACKENDS = {
    # backend: (dispatcher args, function suffix, crash points)
    "tcx": ({"attach": "tc_ingress", "tc_backend": "tcx"}, "", CHANGE_POINTS),
    "clsact": ({"attach": "tc_ingress", "tc_backend": "clsact"}, "", LATE),
    "xdp": ({"attach": "xdp"}, "_xdp", LATE),
    "cilium": ({"attach": "cilium_custom", "endpoint": 42, "custom_hook": "ipv4_ingress"}, "", LATE),
}
CASES = [pytest.param(b, p, id="%s-%s" % (b, p)) for b, (_a, _s, points) in BACKENDS.items() for p in points]


class CrashHost:
    """One host per backend; its dispatcher alternates between chains A and B."""

    def __init__(self, host, backend, cilium=None):
        self.host = host
        self.lab = host.lab
        self.backend = backend
        self.cilium = cilium
        self.attach_args, self.suffix, _points = BACKENDS[backend]
        self.current = None

    def chain(self, key):
        """A: counter; B: counter then twin; '+fresh' adds a plugin installed by the change itself."""
        fn = "count" + self.suffix
        entries = [{"plugin": "counter", "function": fn}]
        for name, flag in (("twin", key.startswith("B")), ("fresh", key.endswith("+fresh"))):
            if flag:
                entries.append({"plugin": name, "function": fn,
                                "constraints": [{"anchor": "after", "plugin": "counter"}]})
        return entries

    def dispatcher_args(self, key, name="dcrash", **place):
        args = dict(self.attach_args, name=name, mode="link", keep_generations=1, plugins=self.chain(key))
        if self.cilium:
            args["cilium_globals"] = self.cilium.globals_dir
        else:
            args.update(interface=self.lab.if_b, netns=self.lab.ns_b)
        args.update(place)
        return self.host.args(**args)

    def apply(self, key):
        args = self.dispatcher_args(key)
        self.host.run("dispatcher", **dict((k, v) for k, v in args.items() if k not in ("bpffs_root", "state_dir")))
        self.current = key

    def running_chain(self):
        return [p for p, _f in self.host.registry()["dispatchers"]["dcrash"]["chain"]["pre"]]


@pytest.fixture(scope="module")
def crash_host(request, tmp_path_factory):
    backend = request.param
    with fresh_host(tmp_path_factory.mktemp("crash-" + backend), quiet=False) as host:
        cilium = None
        if backend == "cilium":
            from cilium_standin import Cilium  # Cilium's convention at tc ingress of b
            cilium = Cilium(host.lab, host.bpffs_root + "-cilium")
        try:
            host.lab.quiet()
            for name, src in (("counter", "counter.c"), ("twin", "counter_twin.c")):
                host.plugin(name, src)
            ch = CrashHost(host, backend, cilium)
            ch.apply("A")
            yield ch
        finally:
            if cilium:
                cilium.close()


@pytest.mark.parametrize("crash_host,point", CASES, indirect=["crash_host"])
def test_killed_change_converges_without_leaks_or_gaps(crash_host, point):
    ch, host, lab, backend = crash_host, crash_host.host, crash_host.lab, crash_host.backend
    target = "B" if ch.current.startswith("A") else "A"
    if point == "after_map_pin":
        target += "+fresh"  # the change installs a plugin: it dies with its maps pinned, unrecorded
    before = kernel_objects(host)
    counted_before = host.map_value("counter")
    with Stream(lab, PORT) as stream:
        if point == "after_map_pin":
            run_crashing("datapath_plugin", host.args(name="fresh", src=os.path.join(TESTDATA, "counter.c")), point)
            host.plugin("fresh", "counter.c")
        else:
            run_crashing("dispatcher", ch.dispatcher_args(target), point)
        ch.apply(target)
        sent, missing = stream.stop()
    assert sent > 100, "the sender barely ran (%d datagrams)" % sent
    assert missing == [], "%d of %d datagrams never arrived: %s..." % (len(missing), sent, missing[:10])
    counted = host.map_value("counter") - counted_before
    assert counted == sent, ("the counter plugin saw %d of %d datagrams: for a while no dispatcher of ours ran"
                             % (counted, sent))

    # The requested chain runs, as recorded: counter first, the others after it by name.
    assert ch.running_chain() == ["counter"] + sorted(e["plugin"] for e in ch.chain(target)[1:])
    info = host.run("datapath_info", dispatcher="dcrash")["dispatchers"][0]
    assert info["attached"] is True and info["prog_id"] == info["generations"][-1]["prog_id"]
    assert_attached_once(ch, info)

    # Nothing leaked: exactly what the registry records, kernel-wide (bpftool).
    got, want = wait_for_objects(host)
    assert got["progs"] == want["progs"] and len(got["progs"]) == 1, (got, want)
    assert got["links"] == want["links"], (got, want)
    assert len(got["links"]) == (1 if backend in ("tcx", "xdp") else 0), got
    assert got["pins"] == want["pins"], (got, want)
    assert len(got["progs"]) == len(before["progs"]) and len(got["links"]) == len(before["links"]), (before, got)


FIRST = {
    # backend: where the second dispatcher goes (a hook the first one does not use)
    "tcx": {"attach": "tc_egress"},
    "clsact": {"attach": "tc_egress"},
    "xdp": {"interface_side": "a"},
    "cilium": {"custom_hook": "ipv6_ingress"},
}


FIRST_CASES = [pytest.param(b, id=b) for b in sorted(FIRST)]


@pytest.mark.parametrize("crash_host", FIRST_CASES, indirect=True)
def test_killed_first_attach_is_adopted_not_a_conflict(crash_host):
    """A first attachment killed after its swap, before any record of it: the next
    run takes it over (or replaces it) instead of reporting a foreign program."""
    ch, host, lab = crash_host, crash_host.host, crash_host.lab
    place = dict(FIRST[ch.backend])
    if place.pop("interface_side", None) == "a":
        place.update(interface=lab.if_a, netns=lab.ns_a)
    args = ch.dispatcher_args("A", name="dfirst", **place)
    try:
        run_crashing("dispatcher", args, "after_swap")
        result = host.run("dispatcher", **dict((k, v) for k, v in args.items()
                                               if k not in ("bpffs_root", "state_dir")))
        assert result["changed"] is True
        info = host.run("datapath_info", dispatcher="dfirst")["dispatchers"][0]
        assert info["attached"] is True and info["prog_id"] == result["prog_id"]
        assert_attached_once(ch, info)
        got, want = wait_for_objects(host)
        assert got["progs"] == want["progs"] and got["links"] == want["links"] and got["pins"] == want["pins"], \
            (got, want)
        assert len(got["progs"]) == 2, "one program per dispatcher (keep_generations 1): %s" % got
    finally:
        # Whatever happened, the host goes back to its one dispatcher for the next case.
        host.run("dispatcher", name="dfirst", state="absent")
        if ch.backend == "clsact":
            lab.run(lab.ns_b, "tc", "filter", "del", "dev", lab.if_b, "egress", check=False)
    got, want = wait_for_objects(host)
    assert len(got["progs"]) == 1 and got["pins"] == want["pins"], (got, want)


def assert_attached_once(ch, info):
    """The attach point holds our recorded program exactly once, nothing of ours besides."""
    lab, att_rec = ch.lab, info["attachment"]
    prog = info["prog_id"]
    if att_rec["backend"] == "tcx":
        direction = "egress" if info["attach"] == "tc_egress" else "ingress"
        assert tcx_progs(lab, lab.ns_b, lab.if_b)[direction] == [prog]
    elif att_rec["backend"] == "clsact":
        direction = "egress" if info["attach"] == "tc_egress" else "ingress"
        ours = [f for f in tc_filters(lab.ns_b, [lab.if_b])[(lab.if_b, direction)] if f[2] == "bpf"]
        assert [f[3] for f in ours] == [prog], "filters at the hook: %s" % ours
    elif att_rec["backend"] == "xdp_link":
        ns = lab.ns_a if att_rec["interface"] == lab.if_a else lab.ns_b
        assert xdp_progs(ns)[att_rec["interface"]] == prog
    else:
        key = att.CILIUM_CUSTOM_HOOKS[att_rec["custom_hook"]]
        assert int.from_bytes(ch.cilium.slot(key)[:4], "little") == prog


MOVE_POINTS = [p for p in POINTS if p != "after_map_pin"]


@pytest.mark.parametrize("point", MOVE_POINTS)
def test_a_killed_clsact_move_leaves_exactly_one_filter(tmp_path, point):
    """A clsact dispatcher moved from tc ingress to tc egress and killed at any
    point of the move: the rerun leaves one filter of ours, at the new hook,
    and nothing of the old one (the write-ahead record carries the old
    attachment until it is released)."""
    with fresh_host(tmp_path) as host:
        lab = host.lab
        host.plugin("counter", "counter.c")

        def args(attach):
            return host.args(name="dmove", attach=attach, tc_backend="clsact", mode="link", keep_generations=1,
                             interface=lab.if_b, netns=lab.ns_b, plugins=[{"plugin": "counter", "function": "count"}])

        host.run("dispatcher", **dict((k, v) for k, v in args("tc_ingress").items()
                                      if k not in ("bpffs_root", "state_dir")))
        run_crashing("dispatcher", args("tc_egress"), point)
        result = host.run("dispatcher", **dict((k, v) for k, v in args("tc_egress").items()
                                               if k not in ("bpffs_root", "state_dir")))
        info = host.run("datapath_info", dispatcher="dmove")["dispatchers"][0]
        assert info["attached"] is True and info["prog_id"] == result["prog_id"]
        filters = tc_filters(lab.ns_b, [lab.if_b])
        ours = [(direction, f[3]) for (_ifname, direction), found in filters.items() for f in found if f[2] == "bpf"]
        assert ours == [("egress", result["prog_id"])], "filters after the rerun: %s" % filters
        rerun = dict((k, v) for k, v in args("tc_egress").items() if k not in ("bpffs_root", "state_dir"))
        assert host.run("dispatcher", **rerun)["changed"] is False
        got, want = wait_for_objects(host)
        assert got["progs"] == want["progs"] and got["pins"] == want["pins"], (got, want)
        host.run("dispatcher", name="dmove", state="absent")
        assert [f for found in tc_filters(lab.ns_b, [lab.if_b]).values() for f in found if f[2] == "bpf"] == []
