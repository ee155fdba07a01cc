# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module of the collection does the same way: the shared options,
the dependency check, and turning our exceptions into fail_json answers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import missing_required_lib

PYROUTE2_IMP_ERR = None
try:
    import pyroute2  # noqa: F401  pylint: disable=unused-import
    HAS_PYROUTE2 = True
except ImportError:
    HAS_PYROUTE2 = False
    PYROUTE2_IMP_ERR = traceback.format_exc()

# Matches plugins/doc_fragments/common.py.
COMMON_ARGS = dict(
    bpffs_root=dict(type="path", default="/sys/fs/bpf/ebpf-datapath"),
    state_dir=dict(type="path", default="/var/lib/ebpf-datapath"),
    lock_timeout=dict(type="float", default=300.0),
)


def common_spec(**spec):
    merged = dict(COMMON_ARGS)
    merged.update(spec)
    return merged


def require_libs(module):
    if not HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2"), exception=PYROUTE2_IMP_ERR)


def report_warnings(module, eng):
    """Hand the engine's warnings (e.g. a constraint on an absent plugin) to Ansible."""
    for warning in eng.warnings:
        module.warn(warning)


def engine(module):
    """An Engine for this module's options (import late: libbpf needs the target's
    libbpf.so.1, which require_libs-style checks report first)."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine
    return Engine(module.params["bpffs_root"], module.params["state_dir"],
                  check_mode=module.check_mode, lock_timeout=module.params["lock_timeout"])


def fail(module, exc, **extra):
    """fail_json with our message, plus the verifier or compiler log when there is one."""
    log = getattr(exc, "log", "") or ""
    if log:
        extra["log"] = log
        tail = "\n".join(log.rstrip().splitlines()[-20:])
        if tail and tail not in str(exc):
            extra["log_tail"] = tail
    module.fail_json(msg=str(exc), **extra)


def known_errors():
    """The exception types that carry an operator-facing message."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.converge import DatapathError
    from ansible_collections.ebpf.datapath.plugins.module_utils.state import StateError
    from ansible_collections.ebpf.datapath.plugins.module_utils.naming import InvalidName
    from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import BpfError
    from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import ToolchainError
    errors = [DatapathError, StateError, InvalidName, BpfError, ToolchainError]
    try:
        from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachError
        errors.append(AttachError)
    except ImportError:
        pass
    return tuple(errors)


def diff_of(result):
    return {"before": result.get("before", ""), "after": result.get("after", "")}
