# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command runner for code that runs outside a module: on the controller
(action plugins) and in the tests and benchmarks.

Inside a module, commands go through AnsibleModule.run_command
(module_common.module_runner); module_utils never start processes themselves.
Both runners have the same shape: ``run(argv, data=None, cwd=None)`` returns
``(rc, stdout_bytes, stderr_bytes)`` and raises OSError when argv[0] cannot run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import subprocess


def run_subprocess(argv, data=None, cwd=None):
    """Run argv (a list, never a shell) with ``data`` on stdin (bytes or text)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    proc = subprocess.run(argv, input=data, stdin=None if data is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, check=False)
    return proc.returncode, proc.stdout, proc.stderr
