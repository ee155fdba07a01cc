# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A no-op rerun imports only what its task needs (docs/architecture.md, "What
a module run imports"): under Ansible every imported module_utils file is
compiled again on every run, which is most of a no-op rerun's time. The time
itself is measured by the benchmarks (control_noop_rerun_*_s); these tests keep
the import sets from growing back, which a timing would only show as noise.
"""

import json
import os
import subprocess
import sys
import tempfile

from modhost import Host, place
from modrun import BUILD, ROOT, run_module

PREFIX = "ansible_collections.ebpf.datapath.plugins.module_utils."

# Runs a module as Ansible does (its file as __main__, arguments from a file)
# and prints, after its result line, the collection's module_utils it imported.
WRAPPER = """
import atexit, runpy, sys
def report():
    names = sorted(m[len(%(prefix)r):] for m in sys.modules if m.startswith(%(prefix)r))
    sys.stdout.write("\\nIMPORTED " + " ".join(names) + "\\n")
atexit.register(report)
path = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(path, run_name="__main__")
""" % {"prefix": PREFIX}


def imports_of(module, args):
    """(result, set of module_utils names) of one run of module."""
    payload = dict(args, _ansible_check_mode=False, _ansible_diff=True, _ansible_tmpdir=tempfile.gettempdir(),
                   _ansible_remote_tmp=tempfile.gettempdir())
    with tempfile.TemporaryDirectory() as tmp:
        wrapper = os.path.join(tmp, "wrapper.py")
        with open(wrapper, "w") as handle:
            handle.write(WRAPPER)
        argfile = os.path.join(tmp, "args.json")
        with open(argfile, "w") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
        env = dict(os.environ, PYTHONPATH=BUILD)
        env.setdefault("EBPF_DATAPATH_CACHE_DIR", os.path.join(BUILD, "test-cache"))
        proc = subprocess.run([sys.executable, wrapper, os.path.join(ROOT, "plugins", "modules", module + ".py"),
                               argfile], capture_output=True, text=True, env=env, timeout=300, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("IMPORTED"), proc.stdout + proc.stderr
    result = json.loads(lines[-2])
    assert not result.get("failed"), result
    return result, set(lines[-1].split()[1:])


def test_a_noop_plugin_rerun_imports_no_libbpf_planner_or_backend(lab, bpffs_root, state_dir):
    host = Host(lab, bpffs_root, state_dir)
    src = os.path.join(ROOT, "bpf", "testdata", "counter.c")
    assert host.run("datapath_plugin", name="counter", src=src)["changed"] is True
    result, imported = imports_of("datapath_plugin", dict(host.common, name="counter", src=src))
    assert result["changed"] is False
    # What the rerun needs: the engine, the registry, the roots, the compile cache.
    assert {"converge", "state", "schema", "roots", "plugin_store", "toolchain"} <= imported
    unneeded = {"libbpf", "bpf_object", "bpf_btf", "bpf_link", "object_info", "cflags", "planner", "chain",
                "attach", "attach_link", "attach_clsact", "attach_cilium", "dispatcher", "inline_build", "probe",
                "converge_apply", "converge_facts", "roots_claim", "plugin_load", "bitcode_join", "bpf_maps",
                "rollback_plan", "clang_run"}
    assert not imported & unneeded, "a no-op datapath_plugin run imported %s" % sorted(imported & unneeded)


def test_a_noop_dispatcher_rerun_imports_no_backend(lab, bpffs_root, state_dir):
    host = Host(lab, bpffs_root, state_dir)
    host.run("datapath_plugin", name="counter", src=os.path.join(ROOT, "bpf", "testdata", "counter.c"))
    args = dict(name="gw", attach="tc_ingress", mode="link", tc_backend="tcx",
                plugins=[{"plugin": "counter", "function": "count"}], **place(lab, "b"))
    assert host.run("dispatcher", **args)["changed"] is True
    try:
        result, imported = imports_of("dispatcher", dict(host.common, **args))
        assert result["changed"] is False
        # The pinned link is read by attach.attached_prog_id: its backend (attach_link) is not imported.
        assert {"converge", "planner", "chain", "attach", "libbpf"} <= imported
        unneeded = {"plugin_store", "toolchain", "generated", "cflags", "bpf_object", "bpf_btf", "bpf_link",
                    "object_info", "dispatcher", "inline_build", "attach_link", "attach_clsact", "attach_cilium",
                    "converge_plugins", "converge_apply", "converge_facts", "roots_claim", "plugin_load",
                    "bitcode_join", "bpf_maps", "rollback_plan", "clang_run"}
        assert not imported & unneeded, "a no-op dispatcher run imported %s" % sorted(imported & unneeded)
    finally:
        host.run("dispatcher", name="gw", state="absent")


def test_what_an_object_holds_is_read_once_per_content(lab, bpffs_root, state_dir, monkeypatch):
    """plugin_store.describe_object remembers an object's description by its
    sha256; without the record the rerun reads the object again (and imports
    libbpf for it), with the same result and no change."""
    monkeypatch.setenv("EBPF_DATAPATH_CACHE_DIR", os.path.join(state_dir, "cache"))
    host = Host(lab, bpffs_root, state_dir)
    src = os.path.join(ROOT, "bpf", "testdata", "tailcalls.c")
    first = host.run("datapath_plugin", name="tails", src=src)
    info_dir = os.path.join(state_dir, "cache", "object-info")
    record = os.path.join(info_dir, first["plugin"]["sha256"] + ".json")
    with open(record) as handle:
        described = json.load(handle)
    assert described["prog_arrays"] == first["plugin"]["prog_arrays"]
    assert sorted(described["functions"]) == first["plugin"]["functions"]
    assert any(entry["family"] == "tc" for entry in described["entries"].values())

    os.unlink(record)
    result, imported = imports_of("datapath_plugin", dict(host.common, name="tails", src=src))
    assert result["changed"] is False and result["plugin"] == first["plugin"]
    assert {"object_info", "libbpf"} <= imported
    with open(record) as handle:
        assert json.load(handle) == described
    assert run_module("datapath_plugin", dict(host.common, name="tails", state="absent"))["changed"] is True
