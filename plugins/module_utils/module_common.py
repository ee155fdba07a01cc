# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module of the collection does the same way: the shared options,
the dependency check, and turning our exceptions into fail_json answers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import importlib.util

from ansible.module_utils.basic import missing_required_lib

# Found, not imported: pyroute2's __init__ loads all of pyroute2 (about half of
# a module's start-up), and only tasks that touch netlink need it; attach.py
# imports it then and reports a broken install itself.
HAS_PYROUTE2 = importlib.util.find_spec("pyroute2") is not None
PYROUTE2_IMP_ERR = None if HAS_PYROUTE2 else "ImportError: No module named 'pyroute2'"

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
    check_roots(module.params["bpffs_root"], module.params["state_dir"])
    # Whatever umask Ansible or the operator's shell left us: every file and
    # directory this run creates (state, cache, pin directories) is root's alone.
    os.umask(0o077)
    return Engine(module.params["bpffs_root"], module.params["state_dir"],
                  check_mode=module.check_mode, lock_timeout=module.params["lock_timeout"])


BPFFS_MOUNT = "/sys/fs/bpf"


def check_roots(bpffs_root, state_dir, mounts_file="/proc/self/mounts"):
    """Refuse roots that would make us write somewhere unintended: relative
    paths (they follow the module's working directory), NUL, and a bpffs_root
    that is not on a BPF filesystem (pins would fail half-way, after
    directories were made there)."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.state import StateError
    for option, value in (("bpffs_root", bpffs_root), ("state_dir", state_dir)):
        if not value or "\0" in value:
            raise StateError("%s %r is empty or contains a NUL character; give an absolute path" % (option, value))
        if not os.path.isabs(value):
            raise StateError("%s %r is not an absolute path; give an absolute path such as %s"
                             % (option, value, COMMON_ARGS[option]["default"]))
    root = _resolved(os.path.normpath(bpffs_root))
    fstype, mount_point = _mount_of(root, mounts_file)
    if fstype == "bpf":
        return
    if (root + "/").startswith(BPFFS_MOUNT + "/") and mount_point != BPFFS_MOUNT:
        return  # /sys/fs/bpf is not mounted yet: the engine mounts bpffs there first
    raise StateError("bpffs_root %s is not on a BPF filesystem (it is on %s, mounted at %s); pins can only be made "
                     "in bpffs: choose a path under %s" % (bpffs_root, fstype, mount_point, BPFFS_MOUNT))


def _resolved(path):
    """path with the symlinks of its existing part resolved (a symlink inside
    bpffs may point elsewhere); the part that does not exist yet is kept."""
    head, tail = path, ""
    while head != "/" and not os.path.exists(head):
        head, part = os.path.split(head)
        tail = os.path.join(part, tail) if tail else part
    real = os.path.realpath(head)
    return os.path.join(real, tail) if tail else real


def _mount_of(path, mounts_file):
    """(fstype, mount point) of the mount that holds path, by the longest prefix."""
    best = ("unknown", "/")
    with open(mounts_file) as handle:
        for line in handle:
            fields = line.split()
            if len(fields) < 3:
                continue
            point = fields[1].replace("\\040", " ")
            if (path + "/").startswith(point.rstrip("/") + "/") and len(point) >= len(best[1]):
                best = (fields[2], point)
    return best


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
