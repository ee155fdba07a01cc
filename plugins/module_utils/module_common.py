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

from ansible_collections.ebpf.datapath.plugins.module_utils.defaults import DEFAULT_BPFFS_ROOT, DEFAULT_STATE_DIR

# Found, not imported: pyroute2's __init__ loads all of pyroute2 (about half of
# a module's start-up), and only tasks that touch netlink need it; attach.py
# imports it then and reports a broken install itself.
HAS_PYROUTE2 = importlib.util.find_spec("pyroute2") is not None
PYROUTE2_IMP_ERR = None if HAS_PYROUTE2 else "ImportError: No module named 'pyroute2'"

# Matches plugins/doc_fragments/common.py.
COMMON_ARGS = dict(
    bpffs_root=dict(type="path", default=DEFAULT_BPFFS_ROOT),
    state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
    lock_timeout=dict(type="float", default=300.0),
)


# Matches plugins/doc_fragments/build.py: the modules that compile.
BUILD_ARGS = dict(
    build_on=dict(type="str", choices=["controller", "target", "auto"], default="target"),
    generated_objects=dict(type="list", elements="dict", default=[]),
)


def common_spec(**spec):
    merged = dict(COMMON_ARGS)
    merged.update(spec)
    return merged


def build_spec(**spec):
    """common_spec plus the build options (build_on, generated_objects)."""
    return common_spec(**dict(BUILD_ARGS, **spec))


def require_libs(module):
    if not HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2"), exception=PYROUTE2_IMP_ERR)


def report_warnings(module, eng):
    """Hand the engine's warnings (e.g. a constraint on an absent plugin) to Ansible."""
    for warning in eng.warnings:
        module.warn(warning)


LOCK_TIMEOUT_MAX = 86400.0


def check_common(params):
    """Ranges of the shared numeric options (plugins/doc_fragments/common.py)."""
    timeout = params.get("lock_timeout")
    # "not (a < t <= b)" also refuses NaN, which compares false with everything.
    if timeout is None or not 0 < timeout <= LOCK_TIMEOUT_MAX:
        from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
        raise DatapathError("lock_timeout %r is out of range: give the seconds to wait for another run's lock, "
                            "more than 0 and at most %d (one day)" % (timeout, int(LOCK_TIMEOUT_MAX)))


def module_runner(module):
    """The toolchain's command runner inside a module: AnsibleModule.run_command,
    argv as given (no ~ or $VAR expansion), bytes in and out, OSError raised
    rather than turned into a failure (a probe tries commands that may be absent)."""
    def run(argv, data=None, cwd=None):
        return module.run_command(argv, data=data, binary_data=True, cwd=cwd, encoding=None,
                                  expand_user_and_vars=False, handle_exceptions=False)
    return run


def engine(module):
    """The Engine for this module's options, entered by ``with``: the shared
    options checked and the umask set first; the Engine itself checks and
    claims the roots (roots.check_roots, roots.claim_roots) before it makes
    anything, and releases a bpffs_root left holding only its marker (import
    late: libbpf needs the target's libbpf.so.1, which require_libs-style
    checks report first)."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine
    params = module.params
    check_common(params)
    # Whatever umask Ansible or the operator's shell left us: every file and
    # directory this run creates (state, cache, pin directories) is root's alone.
    os.umask(0o077)
    # auto reaches a module only when it runs without its action plugin: the
    # target then builds, as with target.
    return Engine(params["bpffs_root"], params["state_dir"], check_mode=module.check_mode,
                  lock_timeout=params["lock_timeout"], run=module_runner(module),
                  build_on="controller" if params.get("build_on") == "controller" else "target",
                  generated_objects=params.get("generated_objects") or ())


def fail(module, exc, **extra):
    """fail_json with our message, plus the verifier or compiler log when there is one."""
    # A host that compiles nothing names what it needs built (generated.NeedsBuild).
    extra.update(exc.result_extra() if hasattr(exc, "result_extra") else {})
    log = getattr(exc, "log", "") or ""
    if log:
        extra["log"] = log
        tail = "\n".join(log.rstrip().splitlines()[-20:])
        if tail and tail not in str(exc):
            extra["log_tail"] = tail
    module.fail_json(msg=str(exc), **extra)


def known_errors():
    """The exception types that carry an operator-facing message: every one
    subclasses errors.DatapathError."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
    return (DatapathError,)


def diff_of(result):
    return {"before": result.get("before", ""), "after": result.get("after", "")}
