# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one of the collection's modules the way Ansible runs it on a target:
a separate Python process reading its arguments from a JSON file, with
``_ansible_check_mode`` / ``_ansible_diff`` set like ``--check`` / ``--diff``.

This is faster than ansible-playbook (no controller, no connection plugin) and
runs exactly the module's code, so the integration tests use it for the big
matrix; real playbooks run in test_cilium.py (the bytecount role),
test_hardening_inputs.py, test_rollout.py and the molecule scenarios.
"""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")


class ModuleFailed(AssertionError):
    def __init__(self, result):
        super().__init__(result.get("msg", json.dumps(result)))
        self.result = result


def run_module(name, args, check=False, diff=True, expect_fail=False, timeout=300):
    payload = dict(args)
    payload["_ansible_check_mode"] = check
    payload["_ansible_diff"] = diff
    payload["_ansible_tmpdir"] = tempfile.gettempdir()
    payload["_ansible_remote_tmp"] = tempfile.gettempdir()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
        path = handle.name
    # One compile cache for every test (see converge.Engine.toolchain): the host
    # tier warms it, the VM tier, running the same clang, reuses it.
    env = dict(os.environ, PYTHONPATH=BUILD)
    env.setdefault("EBPF_DATAPATH_CACHE_DIR", os.path.join(BUILD, "test-cache"))
    try:
        proc = subprocess.run(
            [sys.executable, os.path.join(ROOT, "plugins", "modules", name + ".py"), path],
            capture_output=True, text=True, env=env, timeout=timeout, check=False)
    finally:
        os.unlink(path)
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError("module %s printed no JSON result (rc %d)\nstdout:\n%s\nstderr:\n%s"
                             % (name, proc.returncode, proc.stdout, proc.stderr))
    if result.get("failed") and not expect_fail:
        raise ModuleFailed(result)
    if expect_fail and not result.get("failed"):
        raise AssertionError("module %s was expected to fail but returned %s" % (name, json.dumps(result)))
    return result
