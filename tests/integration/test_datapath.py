# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datapath end to end through the modules, on this kernel, with real packets.

Every test builds a lab (two network namespaces joined by a veth pair), installs
test plugins from bpf/testdata/, puts a dispatcher on one end and sends UDP
from the other. Counts are read straight from the pinned maps with libbpf, an
oracle independent of the modules under test.

Attach points: tc ingress and egress on tcx and on clsact, and XDP, all on an
interface inside a network namespace.

The core tests run in link mode and in inline mode (the `mode` fixture;
DATAPATH_TEST_MODE=link or inline picks one). freplace mode is proven in the
stock-kernel VM (tests/vm/), since this kernel refuses extension programs.
"""

import os

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import probe
from ansible_collections.ebpf.datapath.plugins.module_utils.state import Layout, Lock
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

from modhost import DROP_PORT, OPEN_PORT, TESTDATA, Host, fn, place, udp_burst

MODES = os.environ.get("DATAPATH_TEST_MODE", "link,inline").split(",")

# (attach, tc_backend, side): side "b" = on the receiver's end (ingress), "a" = sender's end (egress)
ATTACH_POINTS = [
    pytest.param("tc_ingress", "tcx", "b", id="tcx-ingress"),
    pytest.param("tc_egress", "tcx", "a", id="tcx-egress"),
    pytest.param("tc_ingress", "clsact", "b", id="clsact-ingress"),
    pytest.param("tc_egress", "clsact", "a", id="clsact-egress"),
    pytest.param("xdp", None, "b", id="xdp"),
]


@pytest.fixture
def host(lab, bpffs_root, state_dir):
    lab.quiet()  # counters are compared after sequential reads: no stray packets
    return Host(lab, bpffs_root, state_dir)


@pytest.fixture(params=MODES)
def mode(request):
    """The mode the core tests build in: link (a BPF-to-BPF call per plugin)
    and inline (the chain compiled into one program)."""
    return request.param


def chain_spec(attach, order_twin_after_dropper=True):
    return [
        {"plugin": "counter", "function": fn("count", attach),
         "constraints": [{"anchor": "before", "plugin": "dropper"}]},
        {"plugin": "dropper", "function": fn("drop_port", attach)},
        {"plugin": "twin", "function": fn("count", attach),
         "constraints": [{"order": "AFTER" if order_twin_after_dropper else "BEFORE", "plugin": "dropper"}]},
        {"plugin": "verdicts", "function": fn("record", attach), "hook": "post"},
    ]


def install_test_plugins(host):
    for name, src in (("counter", "counter.c"), ("twin", "counter_twin.c"),
                      ("dropper", "dropper.c"), ("verdicts", "verdicts.c")):
        host.plugin(name, src)


@pytest.mark.parametrize("attach,backend,side", ATTACH_POINTS)
def test_chain_order_verdicts_and_survival(host, lab, mode, attach, backend, side):
    install_test_plugins(host)
    args = dict(name="d1", attach=attach, mode=mode, plugins=chain_spec(attach), **place(lab, side))
    if backend:
        args["tc_backend"] = backend
    first = host.run("dispatcher", **args)
    assert first["changed"] is True
    assert first["mode"] == mode
    assert first["chain"]["pre"] == [["counter", fn("count", attach)], ["dropper", fn("drop_port", attach)],
                                     ["twin", fn("count", attach)]]

    # Same traffic, counted before and after the dropping plugin.
    assert udp_burst(lab, DROP_PORT, 10) == 0, "the dropper must drop every packet to its port"
    assert udp_burst(lab, OPEN_PORT, 5) == 5
    dropped = host.counter("dropper", "dropped")
    before, after = host.counter("counter"), host.counter("twin")
    assert dropped == 10
    assert before - after == 10, "counter runs before the dropper, twin after: they differ by the drops"
    # The post hook saw exactly the packets that passed the pre chain, with the pass verdict.
    pass_verdict = 2 if attach == "xdp" else 0
    assert host.counter("verdicts", "seen", pass_verdict) == after

    # Rerun: nothing changes, nothing is rebuilt.
    again = host.run("dispatcher", **args)
    assert again["changed"] is False
    assert again["prog_id"] == first["prog_id"]

    # Reorder: twin before the dropper. Counters survive the rebuild.
    args["plugins"] = chain_spec(attach, order_twin_after_dropper=False)
    preview = host.run("dispatcher", _check=True, **args)
    assert preview["changed"] is True
    assert "twin" in preview["diff"]["after"]
    assert host.run("dispatcher", **dict(args, _check=True))["generation"] == 2  # still not applied
    swapped = host.run("dispatcher", **args)
    assert swapped["changed"] is True and swapped["generation"] == 2
    assert swapped["chain"]["pre"][0][0] in ("counter", "twin") and swapped["chain"]["pre"][2][0] == "dropper"
    assert host.counter("counter") >= before and host.counter("twin") >= after
    c0, t0 = host.counter("counter"), host.counter("twin")
    assert udp_burst(lab, DROP_PORT, 7) == 0
    assert host.counter("counter") - c0 == host.counter("twin") - t0, "both now count before the dropper"

    # Removal leaves nothing of ours.
    removed = host.run("dispatcher", name="d1", state="absent")
    assert removed["changed"] is True
    assert udp_burst(lab, DROP_PORT, 3) == 3, "without the dispatcher nothing drops"
    assert not os.path.exists(os.path.join(host.bpffs_root, "dispatchers"))
    assert host.run("dispatcher", name="d1", state="absent")["changed"] is False


def test_check_mode_and_diff_touch_nothing(host, lab, mode):
    install_test_plugins(host)
    args = dict(name="d2", attach="tc_ingress", mode=mode, plugins=chain_spec("tc_ingress"), **place(lab, "b"))
    preview = host.run("dispatcher", _check=True, **args)
    assert preview["changed"] is True
    assert "counter.count -> dropper.drop_port -> twin.count" in preview["diff"]["after"]
    assert not os.path.exists(os.path.join(host.bpffs_root, "dispatchers")), "check mode pinned something"
    assert udp_burst(lab, DROP_PORT, 3) == 3, "check mode attached something"
    applied = host.run("dispatcher", **args)
    assert applied["changed"] is True
    assert host.run("dispatcher", _check=True, **args)["changed"] is False
    assert host.run("dispatcher", **args)["changed"] is False


def test_per_hook_tasks_reach_the_same_chain(host, lab, mode):
    install_test_plugins(host)
    base = dict(name="d3", attach="tc_ingress", mode=mode, **place(lab, "b"))
    host.run("dispatcher", **base)
    for entry in chain_spec("tc_ingress"):
        result = host.run("datapath_hook", dispatcher="d3", **entry)
        assert result["changed"] is True
    again = host.run("datapath_hook", dispatcher="d3", **chain_spec("tc_ingress")[1])
    assert again["changed"] is False
    bulk = host.run("dispatcher", plugins=chain_spec("tc_ingress"), **base)
    assert bulk["changed"] is False, "bulk form and per-hook tasks must give the same end state"
    # Deltas: stray packets (neighbour discovery) may have met counter before twin was hooked.
    c0, t0 = host.counter("counter"), host.counter("twin")
    assert udp_burst(lab, DROP_PORT, 4) == 0
    assert (host.counter("counter") - c0) - (host.counter("twin") - t0) == 4
    removed = host.run("datapath_hook", dispatcher="d3", plugin="dropper", function="drop_port", state="absent")
    assert removed["changed"] is True
    assert udp_burst(lab, DROP_PORT, 4) == 4


def _running_prog(host, name):
    info = host.run("datapath_info", dispatcher=name)
    (disp,) = info["dispatchers"]
    assert disp["attached"] is True
    return disp["prog_id"]


FAILURES = [
    pytest.param("cycle", id="cycle"),
    pytest.param("unknown_plugin", id="unknown-plugin"),
    pytest.param("unknown_function", id="unknown-function"),
    pytest.param("wrong_signature", id="wrong-signature"),
    pytest.param("verifier", id="verifier-refuses"),
    pytest.param("compile", id="compile-error"),
    pytest.param("bad_name", id="bad-name"),
    pytest.param("missing_interface", id="missing-interface"),
    pytest.param("missing_netns", id="missing-netns"),
    pytest.param("unknown_dispatcher", id="unknown-dispatcher"),
    pytest.param("lock_held", id="lock-held"),
]
if not probe.has_freplace():
    # Where the kernel refuses EXT programs, asking for freplace is a failure case.
    FAILURES.append(pytest.param("freplace_here", id="freplace-refused"))


@pytest.mark.parametrize("case", FAILURES)
def test_failures_leave_the_running_chain(host, lab, mode, case):
    install_test_plugins(host)
    good = dict(name="d4", attach="tc_ingress", mode=mode, plugins=chain_spec("tc_ingress"), **place(lab, "b"))
    host.run("dispatcher", **good)
    prog = _running_prog(host, "d4")
    pins_before = sorted(_walk(host.bpffs_root))

    def bad_chain(extra):
        return dict(good, plugins=chain_spec("tc_ingress") + [extra])

    if case == "cycle":
        plugins = chain_spec("tc_ingress")
        plugins[1]["constraints"] = [{"anchor": "before", "plugin": "counter"}]
        res = host.run("dispatcher", _fail=True, **dict(good, plugins=plugins))
        assert "dependency cycle: counter -> dropper -> counter" in res["msg"] or \
            "dependency cycle: dropper -> counter -> dropper" in res["msg"]
    elif case == "unknown_plugin":
        res = host.run("dispatcher", _fail=True, **bad_chain({"plugin": "nosuch", "function": "count"}))
        assert "unknown plugin 'nosuch'" in res["msg"]
    elif case == "unknown_function":
        res = host.run("dispatcher", _fail=True, **bad_chain({"plugin": "twin", "function": "nosuch"}))
        assert "has no global function 'nosuch'" in res["msg"]
    elif case == "wrong_signature":
        host.plugin("wrongsig", "wrongsig.c")
        res = host.run("dispatcher", _fail=True, **bad_chain({"plugin": "wrongsig", "function": "two_ints"}))
        assert "signature" in res["msg"] and "struct __sk_buff *" in res["msg"]
    elif case == "verifier":
        # Refused when installed (issue 13), naming plugin, function and line; nothing recorded.
        res = host.run("datapath_plugin", _fail=True, name="unsafe", src=os.path.join(TESTDATA, "unsafe.c"))
        assert "plugin 'unsafe'" in res["msg"] and "function 'peek'" in res["msg"]
        assert "unsafe.c:11" in res["msg"] and "invalid access to packet" in res["msg"]
        assert "unsafe" not in host.run("datapath_info")["plugins"]
        assert not os.path.exists(os.path.join(host.bpffs_root, "plugins", "unsafe"))
    elif case == "compile":
        res = host.run("datapath_plugin", _fail=True, name="broken", src=os.path.join(TESTDATA, "broken.c"))
        assert "broken.c:7:" in res["msg"] and "error" in res["msg"]
    elif case == "bad_name":
        res = host.run("dispatcher", _fail=True, **dict(good, name="../etc"))
        assert "invalid" in res["msg"]
        res = host.run("datapath_plugin", _fail=True, name="a/b", src=os.path.join(TESTDATA, "counter.c"))
        assert "invalid" in res["msg"]
    elif case == "missing_interface":
        res = host.run("dispatcher", _fail=True, **dict(good, name="d5", interface="nosuch0"))
        assert "nosuch0" in res["msg"]
    elif case == "missing_netns":
        res = host.run("dispatcher", _fail=True, **dict(good, name="d5", netns="dpt-nosuch-ns"))
        assert "dpt-nosuch-ns" in res["msg"]
    elif case == "unknown_dispatcher":
        res = host.run("datapath_hook", _fail=True, dispatcher="nosuch", plugin="counter", function="count")
        assert "unknown dispatcher 'nosuch'" in res["msg"]
    elif case == "lock_held":
        # Another run holds the host's lock: we wait lock_timeout, then fail and say so.
        with Lock(Layout(host.bpffs_root, host.common["state_dir"])):
            res = host.run("dispatcher", _fail=True, lock_timeout=1,
                           **dict(good, plugins=chain_spec("tc_ingress")[:2]))
        assert "holds the lock" in res["msg"] and str(os.getpid()) in res["msg"]
    elif case == "freplace_here":
        res = host.run("dispatcher", _fail=True, **dict(good, mode="freplace"))
        assert "refuses" in res["msg"] and "link" in res["msg"]

    # The running chain is untouched and still does its job; nothing leaked.
    assert _running_prog(host, "d4") == prog
    assert sorted(_walk(host.bpffs_root)) == pins_before
    assert udp_burst(lab, DROP_PORT, 5) == 0
    assert udp_burst(lab, OPEN_PORT, 5) == 5


def test_plugin_removal_refused_while_hooked(host, lab, mode):
    install_test_plugins(host)
    host.run("dispatcher", name="d6", attach="tc_ingress", mode=mode, plugins=chain_spec("tc_ingress"),
             **place(lab, "b"))
    res = host.run("datapath_plugin", _fail=True, name="dropper", state="absent")
    assert "still hooked" in res["msg"] and "d6" in res["msg"]
    assert udp_burst(lab, DROP_PORT, 3) == 0
    forced = host.run("datapath_plugin", name="dropper", state="absent", force=True)
    assert forced["changed"] is True and forced["rebuilt"] == ["d6"]
    assert udp_burst(lab, DROP_PORT, 3) == 3
    assert not os.path.exists(os.path.join(host.bpffs_root, "plugins", "dropper"))
    host.run("dispatcher", name="d6", state="absent")
    for name in ("counter", "twin", "verdicts"):
        assert host.run("datapath_plugin", name=name, state="absent")["changed"] is True
    assert list(_walk(host.bpffs_root)) == []


def test_auto_mode_picks_inline_where_every_plugin_has_source(host, lab, tmp_path):
    """auto: inline when every plugin of the chain was installed from source
    (and this host compiles), else freplace where EXT programs load (the VM),
    else link (this host); the result says why."""
    install_test_plugins(host)
    res = host.run("dispatcher", name="d7", attach="tc_ingress", mode="auto",
                   plugins=chain_spec("tc_ingress")[:1], **place(lab, "b"))
    assert res["mode"] == "inline" and res["mode_reason"].startswith("inline: every plugin")
    assert host.run("datapath_info", dispatcher="d7")["dispatchers"][0]["mode_effective"] == "inline"
    # A plugin installed from a prebuilt object cannot be compiled inline.
    obj = str(tmp_path / "twin.o")
    Toolchain(str(tmp_path / "cache"), run_subprocess).compile(os.path.join(TESTDATA, "counter_twin.c"), out_path=obj)
    host.run("datapath_plugin", name="obj_twin", object=obj)
    expected = "freplace" if probe.has_freplace() else "link"
    plugins = chain_spec("tc_ingress")[:1] + [{"plugin": "obj_twin", "function": "count"}]
    res = host.run("dispatcher", name="d7", attach="tc_ingress", mode="auto", plugins=plugins, **place(lab, "b"))
    assert res["changed"] is True and res["mode"] == expected
    assert "plugin 'obj_twin' installed from a prebuilt object only" in res["mode_reason"]
    failed = host.run("dispatcher", name="d7", attach="tc_ingress", mode="inline", _fail=True, plugins=plugins,
                      **place(lab, "b"))
    assert "mode inline cannot be built here: plugin 'obj_twin' installed from a prebuilt object only" in failed["msg"]


def test_sixty_four_plugins_at_one_hook(host, lab, mode, tmp_path):
    """A chain of 64 plugins (one source installed under 64 names) loads and runs."""
    names = ["p%02d" % i for i in range(64)]
    for name in names:
        host.plugin(name, "counter.c")
    plugins = [{"plugin": n, "function": "count"} for n in names]
    res = host.run("dispatcher", name="d64", attach="tc_ingress", mode=mode, plugins=plugins, **place(lab, "b"))
    assert [p for p, _function in res["chain"]["pre"]] == names
    assert udp_burst(lab, OPEN_PORT, 6) == 6
    counts = [host.counter(n) for n in names]
    assert min(counts) >= 6 and len(set(counts)) == 1, counts


def _walk(root):
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            yield os.path.relpath(os.path.join(dirpath, f), root)


def test_engine_claims_its_roots_before_making_anything(tmp_path):
    """Engine.__enter__ checks (and claims) the roots first: a foreign state_dir
    is refused with nothing made there or in bpffs, not even the lock file."""
    import secrets
    from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine
    from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess
    from ansible_collections.ebpf.datapath.plugins.module_utils.roots import RootsError
    state = tmp_path / "theirs"
    state.mkdir()
    (state / "notes.txt").write_text("someone else's\n")
    bpffs = "/sys/fs/bpf/dpt-h1-" + secrets.token_hex(4)
    with pytest.raises(RootsError) as err:
        with Engine(bpffs, str(state), run=run_subprocess):
            pass
    assert "not ebpf.datapath's" in str(err.value)
    assert sorted(os.listdir(str(state))) == ["notes.txt"] and not os.path.exists(bpffs)
