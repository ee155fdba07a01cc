# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""datapath_plugin with build_on: controller (issue 17), through real
ansible-playbook runs against this host (local connection), real clang, real
kernel, real packets through the lab's veth pair.

The controller and the target are one machine here, so each side gets its own
cold compile cache: EBPF_DATAPATH_CONTROLLER_CACHE_DIR for the action plugin,
EBPF_DATAPATH_CACHE_DIR for the module on the target. Where clang ran is then
read from the caches: a compile leaves an object under <cache>/objects/.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from modhost import DROP_PORT, OPEN_PORT, TESTDATA, udp_burst

from ansible_collections.ebpf.datapath.plugins.module_utils.files import sha256_file
from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned
from ansible_collections.ebpf.datapath.plugins.module_utils.state import remove_bpffs_tree

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COUNTER = os.path.join(TESTDATA, "counter.c")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, BPF)")


class Controller:
    """ansible-playbook on localhost with the test's roots and two cold caches."""

    def __init__(self, tmp, bpffs_root, state_dir):
        self.tmp = tmp
        self.roots = {"bpffs_root": bpffs_root, "state_dir": state_dir}
        self.controller_cache = str(tmp / "controller-cache")
        self.target_cache = str(tmp / "target-cache")
        self.runs = 0

    def play(self, tasks, expect_rc=0, collect=()):
        """Run tasks; returns (recap of localhost, {register name (and each name
        of collect): its value})."""
        self.runs += 1
        results = str(self.tmp / ("results-%d.json" % self.runs))
        registered = sorted([t["register"] for t in tasks if "register" in t] + list(collect))
        tasks = list(tasks) + [{
            "name": "Hand the results to the test",
            "ansible.builtin.copy": {"dest": results, "mode": "0600",
                                     "content": "{{ %s | to_json }}" % self._dict_of(registered)},
            "changed_when": False,
        }] if expect_rc == 0 else list(tasks)
        play = str(self.tmp / ("play-%d.json" % self.runs))
        with open(play, "w") as handle:
            json.dump([{"name": "controller build", "hosts": "localhost", "connection": "local",
                        "gather_facts": False,
                        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                        "module_defaults": {"group/ebpf.datapath.all": self.roots},
                        "tasks": tasks}], handle)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCAL_TEMP=str(self.tmp / "ansible-local"),
                   ANSIBLE_REMOTE_TMP=str(self.tmp / "ansible-remote"),
                   EBPF_DATAPATH_CONTROLLER_CACHE_DIR=self.controller_cache,
                   EBPF_DATAPATH_CACHE_DIR=self.target_cache)
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), play],
                              capture_output=True, text=True, env=env, timeout=600, check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode == expect_rc, out[-8000:]
        recap = [line for line in proc.stdout.splitlines() if line.startswith("localhost") and "ok=" in line]
        assert len(recap) == 1, out[-8000:]
        counts = dict(field.split("=") for field in recap[0].split(":", 1)[1].split())
        if expect_rc != 0:
            return counts, out
        with open(results) as handle:
            return counts, json.load(handle)

    @staticmethod
    def _dict_of(names):
        return "{%s}" % ", ".join("'%s': %s" % (n, n) for n in names)

    @staticmethod
    def objects(cache):
        """The compiled objects in a compile cache (the toolchain's objects/<recipe>/<key>.o)."""
        top = os.path.join(cache, "objects")
        out = []
        for dirpath, _dirs, files in os.walk(top):
            out += [os.path.join(dirpath, f) for f in files if f.endswith(".o") and not f.startswith(".")]
        return sorted(out)

    @staticmethod
    def generated(cache):
        """The objects of generated C a target keeps (shipped by the controller)."""
        top = os.path.join(cache, "generated")
        return sorted(os.listdir(top)) if os.path.isdir(top) else []

    @staticmethod
    def sources(cache):
        """The C files a compile cache compiled (from each entry's manifest)."""
        out = []
        for dirpath, _dirs, files in os.walk(os.path.join(cache, "objects")):
            for name in files:
                if name.endswith(".json") and not name.startswith("."):
                    with open(os.path.join(dirpath, name)) as handle:
                        argv = json.load(handle)["argv"]
                    out += [a for a in argv if a.endswith(".c")]
        return sorted(out)


def plugin_task(register, name, build_on, check=False, src=COUNTER):
    task = {"name": "plugin %s (build_on %s%s)" % (name, build_on, ", check" if check else ""),
            "ebpf.datapath.datapath_plugin": {"name": name, "src": src, "build_on": build_on},
            "register": register}
    if check:
        task["check_mode"] = True
    return task


@pytest.fixture
def controller(tmp_path, bpffs_root, state_dir):
    return Controller(tmp_path, bpffs_root, state_dir)


def test_controller_build_installs_the_shipped_object_counts_traffic_and_reruns_unchanged(controller, lab):
    dispatcher = {"name": "ctl-build", "attach": "tc_ingress", "interface": lab.if_b, "netns": lab.ns_b,
                  "plugins": [{"plugin": "count_in", "function": "count"}], "build_on": "controller"}
    tasks = [
        plugin_task("check1", "count_in", "controller", check=True),
        {"name": "What check mode left", "ebpf.datapath.datapath_info": {}, "register": "info1"},
        plugin_task("apply1", "count_in", "controller"),
        plugin_task("apply2", "count_in", "controller"),
        plugin_task("check2", "count_in", "controller", check=True),
        {"name": "dispatcher", "ebpf.datapath.dispatcher": dispatcher, "register": "disp"},
    ]
    recap, res = controller.play(tasks)

    # Check mode predicted the install and installed nothing.
    assert res["check1"]["changed"] and res["check1"]["built_on"] == "controller"
    assert res["info1"]["plugins"] == []
    # Installed from the object the controller built; the rerun and a check
    # after it see no change; the diff names the plugin.
    assert res["apply1"]["changed"] and res["apply1"]["built_on"] == "controller"
    assert not res["apply2"]["changed"] and res["apply2"]["build_cached"]
    assert not res["check2"]["changed"]
    assert "plugin count_in" in res["apply1"]["diff"]["after"]
    digest = res["apply1"]["plugin"]["sha256"]
    assert res["apply2"]["plugin"]["sha256"] == digest
    assert res["apply1"]["plugin"]["functions"] == ["count", "count_xdp"]

    # Compiled on the controller only: its cache holds the installed object,
    # the link object and the programs that verified the plugin on the target
    # (which asked for them); the target ran no compiler, and keeps the
    # verification objects the controller shipped under <cache>/generated/.
    built = [sha256_file(p) for p in controller.objects(controller.controller_cache)]
    assert digest in built
    assert COUNTER in controller.sources(controller.controller_cache)
    assert controller.objects(controller.target_cache) == []
    assert controller.generated(controller.target_cache)
    # The target recorded the plugin as built from the controller's source, as
    # its own build would be: a link-mode plugin with prefixed symbols.
    with open(os.path.join(controller.roots["state_dir"], "registry.json")) as handle:
        record = json.load(handle)["plugins"]["count_in"]
    assert record["source"] == {"src": COUNTER, "sha256": sha256_file(COUNTER)}
    assert record["link_symbols"] == {"count": "dpp_count_in__count", "count_xdp": "dpp_count_in__count_xdp"}
    stored = os.path.join(controller.roots["state_dir"], "objects", digest + ".o")
    assert sha256_file(stored) == digest

    # The plugin runs in the dispatcher: real packets are counted.
    pin = os.path.join(controller.roots["bpffs_root"], "plugins", "count_in", "maps", "counts")
    before = read_pinned(pin).get(0, 0)
    assert udp_burst(lab, 9911, 10) == 10
    assert read_pinned(pin).get(0, 0) - before >= 10

    # The whole play again: nothing changes (plugin, check and dispatcher), and
    # nothing is compiled anywhere.
    recap, res = controller.play(tasks)
    assert recap["changed"] == "0", recap
    assert sorted(sha256_file(p) for p in controller.objects(controller.controller_cache)) == sorted(built)
    assert controller.objects(controller.target_cache) == []
    assert res["apply2"]["controller_clang_runs"] == 0 and res["disp"]["controller_clang_runs"] == 0
    assert udp_burst(lab, 9911, 5) == 5
    assert read_pinned(pin).get(0, 0) - before >= 15


def test_same_inputs_give_the_same_object_on_the_controller_and_on_the_target(controller):
    """One source, built once by the controller and once by the target, each
    from a cold cache: the installed objects have one sha256."""
    _recap, res = controller.play([
        plugin_task("on_controller", "count_c", "controller"),
        plugin_task("on_target", "count_t", "target"),
        plugin_task("on_auto", "count_a", "auto"),
    ])
    assert res["on_controller"]["built_on"] == "controller"
    assert res["on_target"]["built_on"] == "target"
    # auto: this controller has a usable clang, so it builds here. The plain
    # object comes from the cache; the link object (prefixed with the plugin's
    # name) is new, so clang ran for it.
    assert res["on_auto"]["built_on"] == "controller" and not res["on_auto"]["build_cached"]
    assert res["on_auto"]["plugin"]["sha256"] == res["on_controller"]["plugin"]["sha256"]
    digest = res["on_controller"]["plugin"]["sha256"]
    assert res["on_target"]["plugin"]["sha256"] == digest
    # Real compiles on both sides, not one cache serving the other.
    assert digest in [sha256_file(p) for p in controller.objects(controller.controller_cache)]
    assert digest in [sha256_file(p) for p in controller.objects(controller.target_cache)]
    with open(os.path.join(controller.roots["state_dir"], "objects", digest + ".o"), "rb") as handle:
        installed = handle.read()
    same = [p for p in controller.objects(controller.controller_cache) if sha256_file(p) == digest]
    with open(same[0], "rb") as handle:
        assert handle.read() == installed
    # The link objects too (the one with prefixed symbols, what link mode links).
    with open(os.path.join(controller.roots["state_dir"], "registry.json")) as handle:
        plugins = json.load(handle)["plugins"]
    assert plugins["count_c"]["link_sha256"] != plugins["count_t"]["link_sha256"]  # prefixed with their names
    assert plugins["count_c"]["source"] == plugins["count_t"]["source"]


def test_generated_programs_are_the_same_bytes_on_the_controller_and_on_the_target(controller, lab):
    """One dispatcher chain built by the target and, for a twin dispatcher with
    the same chain, by the controller: the dispatcher object is one object."""
    def disp(name, build_on):
        return {"name": "dispatcher %s" % name, "register": name, "ebpf.datapath.dispatcher": {
            "name": name, "attach": "tc_ingress", "interface": lab.if_b, "netns": lab.ns_b, "build_on": build_on,
            "mode": "link",  # the generated C compiled to one object on either side (auto would inline on the target)
            "tc_backend": "clsact", "plugins": [{"plugin": "count_same", "function": "count"}]}}
    _recap, res = controller.play([plugin_task("plugin", "count_same", "target"), disp("same_t", "target"),
                                   disp("same_c", "controller")])
    assert res["same_c"]["built_on"] == "controller" and res["same_c"]["controller_clang_runs"] == 1
    on_target = [p for p in controller.objects(controller.target_cache) if "dispatcher.c" in json.dumps(
        json.load(open(p[:-2] + ".json"))["argv"])]
    on_controller = [p for p in controller.objects(controller.controller_cache) if "dispatcher.c" in json.dumps(
        json.load(open(p[:-2] + ".json"))["argv"])]
    assert len(on_target) == 1 and len(on_controller) == 1
    assert sha256_file(on_target[0]) == sha256_file(on_controller[0])
    # What the target keeps from the controller is that object.
    assert [sha256_file(os.path.join(controller.target_cache, "generated", g))
            for g in controller.generated(controller.target_cache)] == [sha256_file(on_controller[0])]


def test_a_source_clang_refuses_fails_on_the_controller_with_its_diagnostics(controller):
    _recap, out = controller.play([plugin_task("broken", "broken", "controller",
                                               src=os.path.join(TESTDATA, "broken.c"))], expect_rc=2)
    assert "clang could not compile %s on the controller" % os.path.join(TESTDATA, "broken.c") in out
    assert "broken.c:" in out and "error:" in out
    # Nothing reached the target.
    assert not os.path.exists(os.path.join(controller.roots["state_dir"], "registry.json")) or \
        "broken" not in json.load(open(os.path.join(controller.roots["state_dir"], "registry.json")))["plugins"]
    assert controller.sources(controller.target_cache) == []


def test_the_rollout_role_builds_on_the_controller_by_default_and_on_the_target_when_told(controller, lab):
    """roles/datapath_rollout's apply step: by default the plugin is compiled on
    the controller and nothing is copied to the host; with
    datapath_rollout_build_on: target the source is shipped and the host compiles it."""
    code_dir = str(controller.tmp / "code")

    def apply(plugin, **role_vars):
        variables = {
            "datapath_rollout_plugins": [{"name": plugin, "src": COUNTER}],
            "datapath_rollout_hooks": [{"plugin": plugin, "function": "count"}],
            "datapath_rollout_dispatchers": [{"name": "ctl-" + plugin, "attach": "tc_ingress",
                                              "interface": lab.if_b, "netns": lab.ns_b}],
            "datapath_rollout_code_dir": code_dir,
            "datapath_rollout_bpffs_root": controller.roots["bpffs_root"],
            "datapath_rollout_state_dir": controller.roots["state_dir"],
        }
        variables.update(role_vars)
        _recap, res = controller.play([{
            "name": "the rollout role's apply step",
            "ansible.builtin.include_role": {"name": "ebpf.datapath.datapath_rollout", "tasks_from": "apply"},
            "vars": variables,
        }], collect=["datapath_rollout_plugin_results"])
        return res["datapath_rollout_plugin_results"]["results"][0]

    first = apply("count_r")
    assert first["built_on"] == "controller" and first["changed"]
    assert not os.path.exists(code_dir)  # nothing was shipped but the objects
    assert COUNTER in controller.sources(controller.controller_cache)
    assert controller.objects(controller.target_cache) == []  # the dispatcher was built on the controller too
    pin = os.path.join(controller.roots["bpffs_root"], "plugins", "count_r", "maps", "counts")
    assert udp_burst(lab, 9912, 8) == 8
    assert read_pinned(pin).get(0, 0) >= 8
    assert not apply("count_r")["changed"]

    second = apply("count_s", datapath_rollout_build_on="target")
    assert second["built_on"] == "target" and second["changed"]
    shipped = os.path.join(code_dir, "count_s", "counter.c")
    assert os.path.isfile(shipped)
    assert shipped in controller.sources(controller.target_cache)
    assert second["plugin"]["sha256"] != first["plugin"]["sha256"]  # another path is another object (debug info)


BARE_TARGET = """#!/bin/sh
# The target of test_a_target_without_a_compiler_runs_the_core_flow: Debian's
# python3 (with python3-pyroute2) in a private mount namespace where clang and
# llvm (/usr/lib/llvm-*), every header (/usr/include) and the collection's
# source tree are empty read-only tmpfs mounts. Nothing leaves the namespace.
exec unshare --mount --propagation private /bin/sh -c '
for dir in /usr/lib/llvm-* /usr/include "$0"; do
    mount -t tmpfs -o ro,size=64k ebpf-datapath-bare "$dir" || exit 97
done
shift
exec /usr/bin/python3 "$@"' %(root)s python3 "$@"
"""


def test_a_target_without_a_compiler_runs_the_core_flow(controller, lab):
    """build_on: controller against a target where clang, llvm, the headers and
    the collection's source tree are absent (the target proves it): plugin
    install, dispatcher, hooks, reorder, rollback, a restore after a simulated
    reboot with no controller, removal, with traffic proof, a rerun reporting
    changed=0, and no compiler run on the target."""
    wrapper = controller.tmp / "bare-python"
    wrapper.write_text(BARE_TARGET % {"root": ROOT})
    wrapper.chmod(0o700)
    bare = {"ansible_python_interpreter": str(wrapper)}
    place = {"interface": lab.if_b, "netns": lab.ns_b}
    state = controller.roots["state_dir"]

    def plugin(name, src):
        return {"name": "plugin %s" % name, "register": "plugin_" + name, "vars": bare,
                "ebpf.datapath.datapath_plugin": {"name": name, "src": os.path.join(TESTDATA, src),
                                                  "build_on": "controller"}}

    def hook(name, function, present=True, **more):
        return {"name": "hook %s" % name, "register": "hook_" + name, "vars": bare,
                "ebpf.datapath.datapath_hook": dict({"dispatcher": "bare", "plugin": name, "function": function,
                                                     "state": "present" if present else "absent",
                                                     "build_on": "controller"}, **more)}

    proof = [{"name": "the target cannot compile: %s" % " ".join(argv), "ansible.builtin.command": {"argv": argv},
              "vars": bare, "register": "proof_%d" % n, "failed_when": False, "changed_when": False}
             for n, argv in enumerate([["clang", "--version"], ["clang-19", "--version"],
                                       ["ls", "/usr/include/linux/bpf.h"],
                                       ["ls", os.path.join(ROOT, "galaxy.yml")],
                                       ["python3", "-c", "import ansible_collections.ebpf"]])]
    install = [
        plugin("before", "counter.c"), plugin("dropper", "dropper.c"), plugin("after", "counter_twin.c"),
        {"name": "dispatcher", "register": "disp", "vars": bare, "ebpf.datapath.dispatcher": dict(
            name="bare", attach="tc_ingress", build_on="controller", **place)},
        hook("before", "count", priority=10), hook("dropper", "drop_port", priority=20),
        hook("after", "count", priority=30),
    ]
    recap, res = controller.play(proof + install)
    for n in range(5):
        assert res["proof_%d" % n]["rc"] != 0, res["proof_%d" % n]
    assert recap["changed"] == "7", recap  # three plugins, the dispatcher, three hooks
    assert res["disp"]["built_on"] == "controller" and res["hook_after"]["generation"] == 4
    # The twin plugins use the same function and map names: built on the
    # controller, they are still prefixed and linked side by side.
    assert res["hook_after"]["chain"]["pre"] == [["before", "count"], ["dropper", "drop_port"], ["after", "count"]]

    def counts():
        return dict((name, read_pinned(os.path.join(controller.roots["bpffs_root"], "plugins", name, "maps",
                                                    "counts")).get(0, 0)) for name in ("before", "after"))

    lab.quiet()
    c0 = counts()
    assert udp_burst(lab, DROP_PORT, 10) == 0 and udp_burst(lab, OPEN_PORT, 6) == 6
    c1 = counts()
    assert c1["before"] - c0["before"] == 16 and c1["after"] - c0["after"] == 6, (c0, c1)

    # The same play again: nothing changes and nothing is compiled anywhere.
    clang_before = controller.objects(controller.controller_cache)
    recap, res = controller.play(install)
    assert recap["changed"] == "0", recap
    assert controller.objects(controller.controller_cache) == clang_before
    assert all(res[r]["controller_clang_runs"] == 0 for r in ("plugin_before", "disp", "hook_after"))

    # Reorder by a hook: the dropper first, so both counters see only what passes.
    _recap, res = controller.play([hook("dropper", "drop_port", priority=5)])
    assert res["hook_dropper"]["changed"] and res["hook_dropper"]["generation"] == 5
    c2 = counts()
    assert udp_burst(lab, DROP_PORT, 7) == 0 and udp_burst(lab, OPEN_PORT, 4) == 4
    c3 = counts()
    assert c3["before"] - c2["before"] == 4 and c3["after"] - c2["after"] == 4, (c2, c3)

    # Rollback to generation 4 (no compile at all: its program is pinned).
    _recap, res = controller.play([{"name": "rollback", "register": "back", "vars": bare,
                                    "ebpf.datapath.datapath_rollback": {"dispatcher": "bare", "generation": 4}}])
    assert res["back"]["changed"]
    assert udp_burst(lab, DROP_PORT, 5) == 0 and udp_burst(lab, OPEN_PORT, 5) == 5
    c4 = counts()
    assert c4["before"] - c3["before"] == 10 and c4["after"] - c3["after"] == 5, (c3, c4)

    # A reboot (bpffs emptied: the dispatcher detaches, the maps go) and the
    # boot unit's restore, which runs with no controller: the objects the
    # controller shipped are still in the target's cache, so the target, with
    # no compiler, brings the chain back by itself.
    remove_bpffs_tree(controller.roots["bpffs_root"])
    # The kernel releases the unpinned link a moment later: nothing filters then.
    deadline = time.monotonic() + 5
    while udp_burst(lab, DROP_PORT, 1) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert udp_burst(lab, DROP_PORT, 3) == 3
    _recap, res = controller.play([{"name": "restore as the boot unit runs it", "register": "restored",
                                    "vars": bare, "ebpf.datapath.datapath_restore": {}}])
    assert res["restored"]["changed"] and "built_on" not in res["restored"]
    c5 = counts()
    assert udp_burst(lab, DROP_PORT, 4) == 0 and udp_burst(lab, OPEN_PORT, 2) == 2
    c6 = counts()
    assert c6["before"] - c5["before"] == 6 and c6["after"] - c5["after"] == 2, (c5, c6)

    # Removal: the hook, the dispatcher, the plugins; nothing of ours is left.
    _recap, res = controller.play([
        hook("after", "count", present=False),
        {"name": "dispatcher gone", "vars": bare, "register": "gone",
         "ebpf.datapath.dispatcher": {"name": "bare", "state": "absent", "build_on": "controller"}},
    ] + [{"name": "plugin %s gone" % n, "vars": bare,
          "ebpf.datapath.datapath_plugin": {"name": n, "state": "absent", "build_on": "controller"}}
         for n in ("before", "dropper", "after")])
    assert res["hook_after"]["changed"] and res["gone"]["changed"]
    assert udp_burst(lab, DROP_PORT, 3) == 3
    assert not os.path.exists(controller.roots["bpffs_root"]) or not os.listdir(controller.roots["bpffs_root"])
    with open(os.path.join(state, "registry.json")) as handle:
        registry = json.load(handle)
    assert registry["plugins"] == {} and registry["dispatchers"] == {}
    # The target never compiled: its cache has no compile entry, only the
    # objects the controller shipped.
    assert controller.objects(controller.target_cache) == []
    assert controller.generated(controller.target_cache)
