# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/modules/ must say what the modules' DOCUMENTATION says, and each
DOCUMENTATION must list exactly the options of the module's argument_spec
(ansible-test's validate-modules checks types and defaults too)."""

import ast
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = os.path.join(ROOT, "plugins", "modules")


def test_module_pages_are_current():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "module_docs.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _spec_keys(path):
    """Top-level option names of the module's argument_spec, read from its source."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "common_spec":
            return set(kw.arg for kw in node.keywords) | {"bpffs_root", "state_dir", "lock_timeout"}
    raise AssertionError("no common_spec(...) call in %s" % path)


def test_documentation_matches_argument_spec():
    fragment = yaml.safe_load(_doc(os.path.join(ROOT, "plugins", "doc_fragments", "common.py")))
    modules = [m for m in os.listdir(MODULES) if m.endswith(".py")]
    assert sorted(modules) == ["datapath_hook.py", "datapath_info.py", "datapath_plugin.py", "datapath_restore.py",
                               "datapath_rollback.py", "dispatcher.py"]
    for name in modules:
        path = os.path.join(MODULES, name)
        doc = yaml.safe_load(_doc(path))
        documented = set(doc.get("options") or {}) | set(fragment["options"])
        assert documented == _spec_keys(path), name


def _doc(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):  # a doc fragment keeps it inside its class
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION":
            return node.value.value
    raise AssertionError("no DOCUMENTATION in %s" % path)
