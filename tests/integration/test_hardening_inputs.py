# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input, table-driven: every case must fail with a message that says what
to fix, and leave the host exactly as it was.

One running host serves the whole table (module scope): a lab with traffic,
six plugins, dispatcher ``d-main`` at tcx ingress of b running counter ->
dropper, the bytecount role's dispatcher at clsact egress of a, and programs
that belong to "someone else" holding attach points (an XDP link, a cls_bpf
filter, a Cilium custom-call slot). Each case runs the real module in its own
process, then compares a snapshot taken before with one taken after: every
pin under bpffs_root (kernel object and id), registry.json byte for byte, the
state files with their modes, and every program attached at the lab's
interfaces (tcx, clsact, XDP). Then packets prove the chain still runs: each
one counted, the dropper still dropping, bytecount still adding bytes.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import attach as att
from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object
from ansible_collections.ebpf.datapath.plugins.module_utils.state import Layout, Lock

from hardening_host import (DROP_PORT, FRAME, OPEN_PORT, ROOT, TESTDATA, compile_testdata, diff_snapshots,
                            fresh_host, snapshot)
from lab import remove_tree

ENDPOINT = 42
FOREIGN_PRIO = 7
LONG = "p" * 65

MAIN_CHAIN = [
    {"plugin": "counter", "function": "count", "constraints": [{"anchor": "before", "plugin": "dropper"}]},
    {"plugin": "dropper", "function": "drop_port"},
]


class Foreign:
    """Programs that are not ours, holding attach points we must not take."""

    def __init__(self, lab, xdp_if, qdisc_if, cilium_dir):
        self.obj = bpf_object.BpfObject.open_file(compile_testdata("foreign.c"), name="foreign")
        self.obj.load()
        self.link_fd = None
        self.cilium_dir = cilium_dir
        tc_fd = self.obj.program("foreign_tc").fd
        self.tc_prog = libbpf.prog_info(tc_fd).id
        xdp_fd = self.obj.program("foreign_xdp").fd
        self.xdp_prog = libbpf.prog_info(xdp_fd).id
        # An XDP link on the extra veth end in a (as libxdp or Cilium would hold one).
        ifindex = lab.ifindex(lab.ns_a, xdp_if)
        with lab.in_ns(lab.ns_a):
            self.link_fd = bpf_link.link_create(xdp_fd, ifindex, libbpf.BPF_XDP, 0)
        # A cls_bpf filter at tc ingress of a, priority FOREIGN_PRIO.
        from pyroute2 import IPRoute
        with lab.in_ns(lab.ns_a):
            with IPRoute() as ipr:
                index = ipr.link_lookup(ifname=lab.if_a)[0]
                ipr.tc("add", "clsact", index)
                ipr.tc("add-filter", "bpf", index, handle=1, parent=att.TC_H_CLSACT_INGRESS, prio=FOREIGN_PRIO,
                       protocol=att.ETH_P_ALL, fd=tc_fd, name="foreign_tc", direct_action=True)
        # An old-style ingress qdisc where clsact would go, on the extra veth end in b.
        lab.run(lab.ns_b, "tc", "qdisc", "add", "dev", qdisc_if, "ingress")
        # A Cilium custom-call prog array whose ipv4_ingress slot holds a foreign program.
        os.mkdir(cilium_dir, 0o700)
        self.obj.map("calls").pin(os.path.join(cilium_dir, att.CILIUM_CUSTOM_MAP % ENDPOINT))
        bpf_maps.map_update(self.obj.map("calls").fd, (0).to_bytes(4, "little"), tc_fd.to_bytes(4, "little"))

    def close(self):
        try:
            if self.link_fd is not None:
                libbpf.close_fd(self.link_fd)
            self.obj.close()
        finally:
            remove_tree(self.cilium_dir)


class World:
    def __init__(self, host, tmp):
        self.host = host
        self.lab = host.lab
        self.tmp = tmp
        self.files = os.path.join(str(tmp), "files")
        self.xdp_if = self.lab.name("x")  # extra veth pair: x in a, y in b
        self.qdisc_if = self.lab.name("y")
        self.interfaces = [(self.lab.ns_a, self.lab.if_a), (self.lab.ns_b, self.lab.if_b),
                           (self.lab.ns_a, self.xdp_if), (self.lab.ns_b, self.qdisc_if)]
        self.foreign = None

    def src(self, name):
        return os.path.join(TESTDATA, name)

    def file(self, name):
        return os.path.join(self.files, name)

    def tc_b(self, **extra):
        """A new dispatcher at tc ingress of b (tcx), with the main chain."""
        args = dict(name="d-new", attach="tc_ingress", interface=self.lab.if_b, netns=self.lab.ns_b,
                    tc_backend="tcx", mode="link", plugins=MAIN_CHAIN)
        args.update(extra)
        return args

    def main(self, **extra):
        """d-main as it runs, changed by extra."""
        args = dict(name="d-main", attach="tc_ingress", interface=self.lab.if_b, netns=self.lab.ns_b,
                    tc_backend="tcx", mode="link", plugins=MAIN_CHAIN)
        args.update(extra)
        return args

    def traffic_still_flows(self):
        """The running chains do their job: counter counts every packet, the
        dropper drops its port, bytecount (role, clsact egress of a) adds bytes."""
        host = self.host
        c0, d0 = host.map_value("counter"), host.map_value("dropper", "dropped")
        b0 = host.map_value("bytecount", "bytecount_map")
        assert host.burst(OPEN_PORT, 5) == 5
        assert host.burst(DROP_PORT, 3) == 0, "the dropper stopped dropping"
        assert host.map_value("counter") - c0 == 8, "the counter missed packets: the chain is not running"
        assert host.map_value("dropper", "dropped") - d0 == 3
        assert host.map_value("bytecount", "bytecount_map") - b0 == 8 * FRAME


def _make_files(world):
    """Files a careless or hostile operator might hand the module."""
    os.mkdir(world.files, 0o700)
    counter = world.src("counter.c")
    os.symlink(counter, world.file("counter_link.c"))
    for name, mode in (("world_writable.c", 0o666), ("group_writable.c", 0o620)):
        shutil.copyfile(counter, world.file(name))
        os.chmod(world.file(name), mode)
    shutil.copyfile(compile_testdata("counter.c"), world.file("counter.o"))
    os.chmod(world.file("counter.o"), 0o600)
    shutil.copyfile(world.file("counter.o"), world.file("world_writable.o"))
    os.chmod(world.file("world_writable.o"), 0o666)
    os.symlink(world.file("counter.o"), world.file("counter_link.o"))
    with open(world.file("garbage.o"), "wb") as handle:
        handle.write(b"\x7fELF this is not an object" * 10)
    os.chmod(world.file("garbage.o"), 0o600)


def run_playbook(tmp, name, tasks):
    """ansible-playbook on localhost (the way users run the role); returns the process."""
    play = os.path.join(str(tmp), name + ".yml")
    with open(play, "w") as handle:
        json.dump([{"name": name, "hosts": "localhost", "connection": "local", "gather_facts": False,
                    "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                    "tasks": tasks}], handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(str(tmp), "ansible-local"))
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), play],
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def role_vars(world, **extra):
    lab = world.lab
    values = {
        "bytecount_state": "present", "bytecount_install_deps": False, "bytecount_mode": "link",
        "bytecount_bpffs_root": world.host.bpffs_root, "bytecount_state_dir": world.host.state_dir,
        "bytecount_object_dir": os.path.join(str(world.tmp), "bytecount-objects"),
        "bytecount_controller_dir": os.path.join(str(world.tmp), "bytecount-build"),
        "bytecount_attach_points": [{"name": "bc-egress", "attach": "tc_egress", "interface": lab.if_a,
                                     "netns": lab.ns_a, "tc_backend": "clsact"}],
    }
    values.update(extra)
    return values


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening-inputs")
    with fresh_host(tmp) as host:
        w = World(host, tmp)
        lab = host.lab
        lab.add_veth(lab.ns_a, w.xdp_if, lab.ns_b, w.qdisc_if)
        _make_files(w)
        for name, src in (("counter", "counter.c"), ("twin", "counter_twin.c"), ("dropper", "dropper.c"),
                          ("verdicts", "verdicts.c"), ("wrongsig", "wrongsig.c")):
            host.plugin(name, src)
        host.run("dispatcher", **w.main())
        w.foreign = Foreign(lab, w.xdp_if, w.qdisc_if, host.bpffs_root + "-cilium")
        # A symlink in bpffs that leads out of it, to a plain directory.
        w.evil_root = host.bpffs_root + "-evil"
        os.symlink(w.file(""), w.evil_root)
        try:
            proc = run_playbook(tmp, "baseline", [{"name": "bytecount", "ansible.builtin.include_role": {
                "name": "ebpf.datapath.bytecount"}, "vars": role_vars(w)}])
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
            _snapshot_sees_everything(w)
            w.traffic_still_flows()
            yield w
        finally:
            os.unlink(w.evil_root)
            w.foreign.close()


def _snapshot_sees_everything(w):
    """The oracle itself: the snapshot shows each program the cases must not move."""
    kernel = snapshot(w.host, w.interfaces)["kernel"]
    reg = w.host.registry()["dispatchers"]
    lab = w.lab
    assert kernel[lab.if_b]["tcx"]["ingress"] == [reg["d-main"]["attachment"]["prog_id"]]
    assert [f[3] for f in kernel[lab.if_a]["clsact_egress"]] == [reg["bc-egress"]["attachment"]["prog_id"]]
    assert [(f[0], f[3]) for f in kernel[lab.if_a]["clsact_ingress"]] == [(FOREIGN_PRIO, w.foreign.tc_prog)]
    assert kernel[w.xdp_if]["xdp"] == w.foreign.xdp_prog


class Case:
    def __init__(self, case_id, module, build, words, holding=None, cleanup=None):
        self.id = case_id
        self.module = module
        self.build = build  # world -> module args
        self.words = words  # all must appear in the message (case-insensitive)
        self.holding = holding  # world -> context manager held during the run
        self.cleanup = cleanup  # world -> None, run afterwards whatever happened


def restore_dropper(world):
    """Put dropper's own code back if a failed update recorded other code."""
    if world.host.registry()["plugins"]["dropper"]["source"].get("src") != world.src("dropper.c"):
        world.host.plugin("dropper", "dropper.c")


def held_lock(world):
    return Lock(Layout(world.host.bpffs_root, world.host.state_dir))


P, H, D = "datapath_plugin", "datapath_hook", "dispatcher"
# Allowed by the toolchain's cflag allow-list (-W...), refused by clang itself with -Werror.
BAD_FLAG = "-Wdpt-no-such-warning"


def _hook(plugin, function, before=None, **extra):
    entry = {"plugin": plugin, "function": function}
    if before:
        entry["constraints"] = [{"anchor": "before", "plugin": before}]
    entry.update(extra)
    return entry


CYCLE = [_hook("counter", "count", "dropper"), _hook("dropper", "drop_port", "twin"), _hook("twin", "count", "counter")]
STRICT_ABSENT = [_hook("counter", "count", "nosuch"), _hook("dropper", "drop_port")]
DISAGREE = _hook("twin", "count", constraints=[{"anchor": "before", "order": "AFTER", "plugin": "dropper"}])

CASES = [
    # ---- names that would become paths or C symbols
    Case("plugin-name-slash", P, lambda w: dict(name="a/b", src=w.src("counter.c")), ["invalid", "'/'"]),
    Case("plugin-name-dotdot", P, lambda w: dict(name="..", src=w.src("counter.c")), ["invalid", "'..'"]),
    Case("plugin-name-nul", P, lambda w: dict(name="coun\0ter", src=w.src("counter.c")), ["invalid", "NUL"]),
    Case("plugin-name-too-long", P, lambda w: dict(name=LONG, src=w.src("counter.c")),
         ["invalid", "65 characters", "at most 64"]),
    Case("plugin-name-double-underscore", P, lambda w: dict(name="my__plugin", src=w.src("counter.c")),
         ["invalid", "'__'"]),
    Case("dispatcher-name-dotdot", D, lambda w: w.tc_b(name="../etc"), ["dispatcher name", "invalid", "'/'"]),
    Case("dispatcher-name-nul", D, lambda w: w.tc_b(name="d\0x"), ["invalid", "NUL"]),
    Case("bpffs-root-nul", P, lambda w: dict(name="twin", src=w.src("counter_twin.c"),
                                             bpffs_root=w.host.bpffs_root + "\0x"), ["bpffs_root", "NUL"]),
    Case("bpffs-root-not-bpffs", D, lambda w: w.main(bpffs_root=os.path.join(str(w.tmp), "not-bpffs")),
         ["bpffs_root", "not on a BPF filesystem"]),
    Case("bpffs-root-symlink-out-of-bpffs", D, lambda w: w.main(bpffs_root=w.evil_root),
         ["bpffs_root", "not on a BPF filesystem"]),
    Case("state-dir-relative", P, lambda w: dict(name="twin", src=w.src("counter_twin.c"), state_dir="state"),
         ["state_dir", "absolute"]),
    # ---- unknown things
    Case("hook-unknown-dispatcher", H, lambda w: dict(dispatcher="nosuch", plugin="twin", function="count"),
         ["unknown dispatcher 'nosuch'", "create it first"]),
    Case("hook-unknown-plugin", H, lambda w: dict(dispatcher="d-main", plugin="nosuch", function="count"),
         ["unknown plugin 'nosuch'", "datapath_plugin"]),
    Case("hook-unknown-function", H, lambda w: dict(dispatcher="d-main", plugin="twin", function="nosuch"),
         ["no global function 'nosuch'", "count"]),
    Case("unknown-interface", D, lambda w: w.tc_b(interface="nosuch0"), ["nosuch0", "not found"]),
    Case("unknown-netns", D, lambda w: w.tc_b(netns="dpt-nosuch-ns"), ["dpt-nosuch-ns", "does not exist"]),
    Case("move-to-unknown-interface", D, lambda w: w.main(interface="nosuch1"), ["nosuch1", "not found"]),
    Case("plugin-absent-while-hooked", P, lambda w: dict(name="dropper", state="absent"),
         ["still hooked", "d-main", "force: true"]),
    # ---- code that cannot run where it is asked to
    Case("hook-wrong-signature", H, lambda w: dict(dispatcher="d-main", plugin="wrongsig", function="two_ints"),
         ["signature", "int two_ints(struct __sk_buff *)"]),
    Case("hook-post-needs-verdict", H,
         lambda w: dict(dispatcher="d-main", plugin="twin", function="count", hook="post"),
         ["post hook", "int count(struct __sk_buff *, int)"]),
    Case("main-wrong-signature", D, lambda w: w.main(main={"plugin": "wrongsig", "function": "two_ints"}),
         ["main", "signature"]),
    Case("verifier-refuses", P, lambda w: dict(name="unsafe", src=w.src("unsafe.c")),
         ["plugin 'unsafe'", "refuses function 'peek'", "unsafe.c:11", "invalid access to packet"]),
    Case("source-does-not-compile", P, lambda w: dict(name="broken", src=w.src("broken.c")),
         ["clang could not compile", "broken.c:7", "error"]),
    Case("source-without-hook-function", P, lambda w: dict(name="nohook", src=w.src("nohook.c")),
         ["no global function", "static"]),
    Case("cflags-clang-refuses", P, lambda w: dict(name="twin", src=w.src("counter_twin.c"),
                                                   cflags=["-Werror", BAD_FLAG]),
         ["clang could not compile", BAD_FLAG]),
    Case("maps-changed-shape", P, lambda w: dict(name="counter", src=w.src("counter_resized.c")),
         ["maps of plugin 'counter'", "state: absent, force: true"]),
    # ---- files: digests, symlinks, modes
    Case("object-sha256-mismatch", P, lambda w: dict(name="prebuilt", object=w.file("counter.o"), sha256="0" * 64),
         ["sha256", "expected " + "0" * 64, "refusing"]),
    Case("object-not-bpf", P, lambda w: dict(name="prebuilt", object=w.file("garbage.o")), ["BTF", "-g"]),
    Case("source-symlink", P, lambda w: dict(name="twin", src=w.file("counter_link.c")),
         ["is a symlink", "real file"]),
    Case("source-world-writable", P, lambda w: dict(name="twin", src=w.file("world_writable.c")),
         ["writable by group or others", "chmod go-w"]),
    Case("object-world-writable", P, lambda w: dict(name="prebuilt", object=w.file("world_writable.o")),
         ["writable by group or others", "666"]),
    Case("source-is-a-directory", P, lambda w: dict(name="twin", src=TESTDATA), ["not a regular file"]),
    Case("source-missing", P, lambda w: dict(name="twin", src="/nonexistent/plugin.c"),
         ["cannot be read", "No such file"]),
    Case("source-path-nul", P, lambda w: dict(name="twin", src=w.src("counter_twin.c") + "\0.c"),
         ["plugin source", "NUL"]),
    # ---- constraints
    Case("constraint-self", H, lambda w: dict(dispatcher="d-main", plugin="twin", function="count",
                                              constraints=[{"anchor": "before", "plugin": "twin"}]),
         ["relative to itself"]),
    Case("constraint-bad-anchor", H, lambda w: dict(dispatcher="d-main", plugin="twin", function="count",
                                                    constraints=[{"anchor": "sideways", "plugin": "dropper"}]),
         ["unknown anchor value 'sideways'", "before or after"]),
    Case("constraint-anchor-and-order-disagree", D, lambda w: w.main(plugins=MAIN_CHAIN + [DISAGREE]),
         ["anchor says before but order says after"]),
    Case("constraint-cycle", D, lambda w: w.main(plugins=CYCLE),
         ["dependency cycle", "counter", "dropper", "twin"]),
    Case("constraint-strict-absent", D, lambda w: w.main(strict_constraints=True, plugins=STRICT_ABSENT),
         ["nosuch"]),
    # ---- conflicting options
    Case("src-and-object", P, lambda w: dict(name="twin", src=w.src("counter_twin.c"), object=w.file("counter.o")),
         ["mutually exclusive", "src", "object"]),
    Case("sha256-with-src", P, lambda w: dict(name="twin", src=w.src("counter_twin.c"), sha256="0" * 64),
         ["sha256 checks a prebuilt object", "object:"]),
    Case("cilium-with-interface", D, lambda w: dict(name="d-cil", attach="cilium_custom", endpoint=ENDPOINT,
                                                    custom_hook="ipv4_ingress", interface=w.lab.if_b,
                                                    cilium_globals=w.foreign.cilium_dir, plugins=MAIN_CHAIN),
         ["cilium_custom", "interface", "do not apply"]),
    Case("duplicate-hooks", D, lambda w: w.main(plugins=MAIN_CHAIN + [{"plugin": "counter", "function": "count"}]),
         ["more than once", "counter.count"]),
    # ---- attach points that are someone else's
    Case("tcx-anchor-not-at-this-hook", D, lambda w: w.tc_b(position={"anchor": "before",
                                                                      "prog_id": w.foreign.xdp_prog}),
         ["no such program", "tc ingress"]),
    Case("xdp-owned-by-foreign-link", D, lambda w: dict(name="d-xdp", attach="xdp", interface=w.xdp_if,
                                                        netns=w.lab.ns_a, mode="link",
                                                        plugins=[{"plugin": "counter", "function": "count_xdp"}]),
         ["already attached", "not ours", "foreign_xdp"]),
    Case("move-onto-foreign-xdp", D, lambda w: w.main(attach="xdp", interface=w.xdp_if, netns=w.lab.ns_a,
                                                      plugins=[{"plugin": "counter", "function": "count_xdp"}]),
         ["already attached", "not ours"]),
    Case("clsact-priority-taken", D, lambda w: dict(name="d-cls", attach="tc_ingress", interface=w.lab.if_a,
                                                    netns=w.lab.ns_a, tc_backend="clsact", mode="link",
                                                    position={"priority": FOREIGN_PRIO}, plugins=MAIN_CHAIN),
         ["priority %d" % FOREIGN_PRIO, "taken by", "foreign_tc", "not ours"]),
    Case("ingress-qdisc-not-clsact", D, lambda w: dict(name="d-cls", attach="tc_ingress", interface=w.qdisc_if,
                                                       netns=w.lab.ns_b, tc_backend="clsact", mode="link",
                                                       plugins=MAIN_CHAIN),
         ["ingress qdisc, not clsact"]),
    Case("cilium-slot-owned", D, lambda w: dict(name="d-cil", attach="cilium_custom", endpoint=ENDPOINT,
                                                custom_hook="ipv4_ingress", cilium_globals=w.foreign.cilium_dir,
                                                mode="link", plugins=MAIN_CHAIN),
         ["already in the", "not ours", "foreign_tc"]),
    Case("lock-held", D, lambda w: dict(w.main(plugins=MAIN_CHAIN[:1]), lock_timeout=0.5),
         ["holds the lock", str(os.getpid()), "lock_timeout"], holding=held_lock),
    # New code for a hooked plugin that the verifier would refuse: refused before anything is stored.
    Case("hooked-plugin-update-breaks-chain", P, lambda w: dict(name="dropper", src=w.src("unsafe.c")),
         ["d-main", "drop_port"], cleanup=restore_dropper),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_input_fails_clearly_and_changes_nothing(world, case):
    host = world.host
    before = snapshot(host, world.interfaces)
    args = case.build(world)
    try:
        if case.holding:
            with case.holding(world):
                res = host.run(case.module, _fail=True, **args)
        else:
            res = host.run(case.module, _fail=True, **args)
        msg = res["msg"]
        missing = [w for w in case.words if w.lower() not in msg.lower()]
        assert not missing, "message lacks %s: %s" % (missing, msg)
        assert "Traceback" not in msg and "MODULE FAILURE" not in msg, msg
        assert diff_snapshots(before, snapshot(host, world.interfaces)) == []
        world.traffic_still_flows()
    finally:
        if case.cleanup:
            case.cleanup(world)


def test_table_is_big_enough():
    assert len(set(c.id for c in CASES)) == len(CASES) >= 40


ROLE_CASES = [
    ("state-not-a-choice", {"bytecount_state": "sideways"}, ["bytecount_state", "sideways"]),
    ("tc-without-interface", {"bytecount_attach_points": [{"name": "bc-x", "attach": "tc_ingress"}]},
     ["interface"]),
    ("dispatcher-name-escapes", "escape", ["dispatcher name '../escape' is invalid"]),
    ("unknown-interface", "nosuch", ["nosuch9 not found"]),
]


def test_role_bad_inputs_fail_and_change_nothing(world):
    """The bytecount role through ansible-playbook, one block per bad input,
    each rescued so the next runs: each fails, saying what to fix, and
    together they change nothing."""
    lab = world.lab
    good = role_vars(world)["bytecount_attach_points"]
    tasks = []
    for case_id, extra, _words in ROLE_CASES:
        if extra == "escape":
            extra = {"bytecount_attach_points": good + [{"name": "../escape", "attach": "tc_ingress",
                                                         "interface": lab.if_b, "netns": lab.ns_b}]}
        elif extra == "nosuch":
            extra = {"bytecount_attach_points": good + [{"name": "bc-nosuch", "attach": "tc_ingress",
                                                         "interface": "nosuch9", "netns": lab.ns_b}]}
        tasks.append({"name": case_id, "block": [
            {"name": "role", "ansible.builtin.include_role": {"name": "ebpf.datapath.bytecount"},
             "vars": role_vars(world, **extra)},
            {"name": "not failed", "ansible.builtin.set_fact": {
                "hardening": "{{ hardening | default({}) | combine({%r: 'DID NOT FAIL'}) }}" % case_id}}],
            "rescue": [{"name": "record", "ansible.builtin.set_fact": {
                "hardening": "{{ hardening | default({}) | combine({%r: ansible_failed_result | to_json}) }}"
                             % case_id}}]})
    out = os.path.join(str(world.tmp), "role-cases.json")
    write = {"content": "{{ hardening | to_json }}", "dest": out, "mode": "0600"}
    tasks.append({"name": "write", "ansible.builtin.copy": write})
    before = snapshot(world.host, world.interfaces)
    proc = run_playbook(world.tmp, "role-bad-inputs", tasks)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    with open(out) as handle:
        results = json.load(handle)
    for case_id, _extra, words in ROLE_CASES:
        text = results.get(case_id, "")
        assert text != "DID NOT FAIL", case_id
        text = re.sub(r"\\u0027", "'", text)
        missing = [w for w in words if w not in text]
        assert not missing, "%s: lacks %s in %s" % (case_id, missing, text[:3000])
    assert diff_snapshots(before, snapshot(world.host, world.interfaces)) == []
    world.traffic_still_flows()
