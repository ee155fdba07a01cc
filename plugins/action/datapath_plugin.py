# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ebpf.datapath.datapath_plugin: where the plugin is built.

``build_on: target`` (the default) runs the module unchanged: the target
compiles ``src`` with its own clang. ``build_on: controller`` compiles ``src``
here with the collection's toolchain (module_utils/toolchain.py, the same argv
and flags a target uses) into a content-addressed cache shared by every host
and fork of the play, ships the object to the target's remote tmp dir and runs
the module with ``object`` and ``sha256`` instead of ``src``: the target needs
no compiler for it. A prebuilt ``object`` given with ``build_on: controller``
is a controller path and is shipped the same way. ``auto`` builds here when
this controller has a usable clang and ``src`` is a file here, else on the
target. The result says where: ``built_on``.

The cache is $EBPF_DATAPATH_CONTROLLER_CACHE_DIR, else $EBPF_DATAPATH_CACHE_DIR
(the compile cache hosts simulated on one machine share), else
~/.cache/ebpf-datapath/controller. Compiles of one controller are serialized on
a lock in the cache, so the forks of a play run clang once per distinct source
and the others find the object in the cache.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.files import makedirs_private, sha256_file
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

MODULE = "ebpf.datapath.datapath_plugin"
BUILD_ON = ("controller", "target", "auto")
DEFAULT_BUILD_ON = "target"
CACHE_ENVS = ("EBPF_DATAPATH_CONTROLLER_CACHE_DIR", "EBPF_DATAPATH_CACHE_DIR")
DEFAULT_CACHE_DIR = "~/.cache/ebpf-datapath/controller"


def controller_cache_dir():
    chosen = [os.environ[name] for name in CACHE_ENVS if os.environ.get(name)]
    return os.path.abspath(os.path.expanduser((chosen + [DEFAULT_CACHE_DIR])[0]))


class ControllerBuild:
    """One compile on the controller: the object in the cache and its sha256."""

    def __init__(self, object_path, sha256, cached, argv):
        self.object_path = object_path
        self.sha256 = sha256
        self.cached = cached
        self.argv = argv


def controller_toolchain(cache_dir):
    """The toolchain of this controller, or ToolchainError when it has no usable clang."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
    makedirs_private(cache_dir)
    return Toolchain(cache_dir, run_subprocess)


def compile_on_controller(toolchain, src, cflags, include_dirs):
    """Compile src exactly as the target's plugin store compiles a plugin's
    plain object (no defines), so the same inputs give the same bytes."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.plugin_store import check_input_file
    from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import CompileError
    check_input_file(src, "plugin source")
    for inc in include_dirs:
        if not os.path.isdir(inc):
            raise DatapathError("include directory %s does not exist on the controller (with build_on: controller, "
                                "include_dirs are controller paths)" % inc)
    lock_path = os.path.join(toolchain.cache_dir, "controller-build.lock")
    with open(lock_path, "a") as lock:
        # One compile at a time on this controller: a fork waiting here then
        # finds the object another fork just built in the cache.
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            result = toolchain.compile(src, cflags=list(cflags), include_dirs=list(include_dirs), defines={})
        except CompileError as exc:
            raise DatapathError("clang could not compile %s on the controller:\n%s" % (src, exc.diagnostics),
                                log=exc.diagnostics)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return ControllerBuild(result.object_path, result.sha256, result.cached, list(result.argv))


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        args = dict(self._task.args)
        build_on = args.get("build_on") or DEFAULT_BUILD_ON
        if build_on not in BUILD_ON:
            raise AnsibleActionFail("build_on must be one of %s, not %r" % (", ".join(BUILD_ON), build_on))
        shipping = (args.get("state") or "present") == "present" and bool(args.get("src")) != bool(args.get("object"))
        if build_on == "target" or not shipping or (args.get("src") and args.get("sha256")):
            # Nothing to build or ship here (removal, or options the module refuses
            # with its own message): the module decides on the target.
            args["build_on"] = "target" if build_on == "auto" else build_on
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result

        try:
            if args.get("object"):
                build = None
                local = self._controller_object(args)
                digest = sha256_file(local)
                if args.get("sha256") and args["sha256"].lower() != digest:
                    raise AnsibleActionFail("object %s has sha256 %s on the controller, expected %s; refusing to ship it"
                                            % (local, digest, args["sha256"].lower()))
            else:
                build = self._build(args, build_on)
                if build is None:  # auto, and this controller cannot build it
                    args["build_on"] = "target"
                    result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
                    return result
                local, digest = build.object_path, build.sha256
        except DatapathError as exc:
            result.update(failed=True, msg=str(exc))
            if exc.log:
                result["log"] = exc.log
            return result

        try:
            if not self._connection._shell.tmpdir:
                self._make_tmp_path()
            remote = self._connection._shell.join_path(self._connection._shell.tmpdir, "plugin-%s.o" % digest[:16])
            self._transfer_file(local, remote)
            self._fixup_perms2((self._connection._shell.tmpdir, remote), execute=False)
            for key in ("src", "cflags", "include_dirs"):
                args.pop(key, None)
            args.update(object=remote, sha256=digest, build_on="controller")
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if build is not None:
            result["built_on"] = "controller"
            result["build_cached"] = build.cached
        return result

    def _controller_object(self, args):
        """A prebuilt object named on the controller (build_on: controller)."""
        path = os.path.expanduser(args["object"])
        try:
            return self._find_needle("files", path)
        except AnsibleError as exc:
            raise DatapathError("object %s is not a file on the controller (with build_on: controller, object is a "
                                "controller path): %s" % (path, exc))

    def _build(self, args, build_on):
        """Compile src here. None when build_on is auto and this controller
        cannot build it (no usable clang, or src not a file here)."""
        from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import ToolchainError
        src = os.path.expanduser(args["src"])
        try:
            src = self._find_needle("files", src)
        except AnsibleError as exc:
            if build_on == "auto":
                self._display.vvv("datapath_plugin: %s is no file on the controller: building on the target" % src)
                return None
            raise DatapathError("src %s is not a file on the controller (with build_on: controller, src is a "
                                "controller path): %s" % (src, exc))
        try:
            toolchain = controller_toolchain(controller_cache_dir())
        except ToolchainError as exc:
            if build_on == "auto":
                self._display.vvv("datapath_plugin: no usable clang on the controller (%s): building on the target" % exc)
                return None
            raise DatapathError("build_on: controller, but the controller cannot compile: %s" % exc)
        include_dirs = [os.path.abspath(os.path.expanduser(d)) for d in args.get("include_dirs") or []]
        return compile_on_controller(toolchain, os.path.abspath(src), args.get("cflags") or [], include_dirs)
