# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of ``build_on``, shared by the action plugins of the
modules that compile (datapath_plugin, dispatcher, datapath_hook,
datapath_restore).

``build_on: target`` runs the module as it is. ``controller`` (or ``auto`` on
a controller with a usable clang) runs it with ``build_on: controller``, so
the target compiles nothing. The target plans first: when the change needs
objects of C it generates (a dispatcher, a verification program, freplace
wrappers) that it does not have, the module stops before changing anything
and returns ``needs_build`` with those sources (module_utils/generated.py).
This side compiles them with the collection's toolchain into the controller's
cache, ships them into the task's remote tmp dir and runs the module again
with ``generated_objects``; the target keeps them in its cache, so a rerun
asks for nothing. A change asks at most once per step (verification, then the
rebuilds), so a few rounds always suffice.

The cache is $EBPF_DATAPATH_CONTROLLER_CACHE_DIR, else $EBPF_DATAPATH_CACHE_DIR
(the compile cache hosts simulated on one machine share), else
~/.cache/ebpf-datapath/controller. Compiles on one controller are serialized on
a lock in the cache, so the forks of a play run clang once per distinct source
and the others find the object in the cache.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import fcntl
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.files import makedirs_private, sha256_file
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

BUILD_ON = ("controller", "target", "auto")
DEFAULT_BUILD_ON = "target"
CACHE_ENVS = ("EBPF_DATAPATH_CONTROLLER_CACHE_DIR", "EBPF_DATAPATH_CACHE_DIR")
DEFAULT_CACHE_DIR = "~/.cache/ebpf-datapath/controller"
# Module runs per task at most: plan, then one round per step that asks.
MAX_ROUNDS = 4


def controller_cache_dir():
    chosen = [os.environ[name] for name in CACHE_ENVS if os.environ.get(name)]
    return os.path.abspath(os.path.expanduser((chosen + [DEFAULT_CACHE_DIR])[0]))


def controller_builder(cache_dir):
    """This controller's generated.Builder; ToolchainError when it has no usable clang."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.generated import Builder
    makedirs_private(cache_dir)
    builder = Builder(cache_dir, run_subprocess)
    builder.toolchain  # noqa: B018 (finds clang now: auto decides on it)
    return builder


@contextlib.contextmanager
def compile_lock(builder):
    """One compile at a time on this controller: a fork waiting here then finds
    the object another fork just built in the cache."""
    with open(os.path.join(builder.cache_dir, "controller-build.lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def compile_generated(builder, name, text):
    """The controller's object of generated C (a target's needs_build entry).
    Returns (object path, sha256, whether clang ran)."""
    with compile_lock(builder):
        result = builder.toolchain.compile_source_text(text, name)
    return result.object_path, result.sha256, not result.cached


class BuildingAction(ActionBase):
    """Runs MODULE, building on the controller what build_on asks."""

    TRANSFERS_FILES = True
    MODULE = None

    def run(self, tmp=None, task_vars=None):
        result = super(BuildingAction, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        args = dict(self._task.args)
        build_on = args.get("build_on") or DEFAULT_BUILD_ON
        if build_on not in BUILD_ON:
            raise AnsibleActionFail("build_on must be one of %s, not %r" % (", ".join(BUILD_ON), build_on))
        builder = None
        if build_on != "target" and self.builds(args):
            builder = self._controller_builder(build_on)
        if builder is None:
            args["build_on"] = "target"
            result.update(self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))
            return result
        self.clang_runs = 0
        try:
            if not self._connection._shell.tmpdir:
                self._make_tmp_path()
            try:
                args = self.prepare(builder, args, task_vars)
                module_result = self._run_rounds(builder, args, task_vars)
            except DatapathError as exc:
                module_result = {"failed": True, "msg": str(exc)}
                if exc.log:
                    module_result["log"] = exc.log
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        result.update(module_result)
        result["built_on"] = "controller"
        result["controller_clang_runs"] = self.clang_runs
        return result

    # -- for subclasses -----------------------------------------------------
    def builds(self, args):
        """Whether this task may compile at all (removals do not)."""
        return (args.get("state") or "present") == "present"

    def prepare(self, builder, args, task_vars):
        """The module's arguments for a controller build (datapath_plugin builds
        its plugin here first). Raises DatapathError with what to fix."""
        del builder, task_vars
        return args

    # -- shared ---------------------------------------------------------------
    def _controller_builder(self, build_on):
        from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import ToolchainError
        try:
            return controller_builder(controller_cache_dir())
        except ToolchainError as exc:
            if build_on == "auto":
                self._display.vvv("%s: no usable clang on the controller (%s): building on the target"
                                  % (self.MODULE, exc))
                return None
            raise AnsibleActionFail("build_on: controller, but the controller cannot compile: %s" % exc)

    def ship(self, local, name):
        """Copy a controller file into the task's remote tmp dir; its remote path."""
        shell = self._connection._shell
        remote = shell.join_path(shell.tmpdir, name)
        self._transfer_file(local, remote)
        self._fixup_perms2((shell.tmpdir, remote), execute=False)
        return remote

    def _run_rounds(self, builder, args, task_vars):
        from ansible_collections.ebpf.datapath.plugins.module_utils.generated import generated_key
        shipped = []
        for _round in range(MAX_ROUNDS):
            module_args = dict(args, build_on="controller", generated_objects=list(shipped))
            res = self._execute_module(module_name=self.MODULE, module_args=module_args, task_vars=task_vars)
            needs = res.get("needs_build")
            if not needs:
                return res
            for item in needs:
                name, text = item.get("name"), item.get("text")
                described = isinstance(name, str) and isinstance(text, str)
                if not described or item.get("key") != generated_key(name, text):
                    raise DatapathError("the target asked for a build it did not describe right: %r" % (item,))
                try:
                    path, digest, ran = compile_generated(builder, name, text)
                except Exception as exc:
                    raise DatapathError("compiling the %s the target generated failed on the controller: %s"
                                        % (name, exc))
                self.clang_runs += int(ran)
                remote = self.ship(path, "generated-%s.o" % item["key"][:16])
                shipped.append({"key": item["key"], "path": remote, "sha256": digest})
        raise DatapathError("the target still asked for builds after %d rounds: %s" % (MAX_ROUNDS, res.get("msg")))


def local_file(action, path, what):
    """A controller file named by a task (looked up in files/ as template does)."""
    from ansible.errors import AnsibleError
    path = os.path.expanduser(path)
    try:
        return action._find_needle("files", path)
    except AnsibleError as exc:
        raise DatapathError("%s %s is not a file on the controller (with build_on: controller, it is a controller "
                            "path): %s" % (what, path, exc))


def checked_digest(path, expected, what):
    digest = sha256_file(path)
    if expected and expected.lower() != digest:
        raise DatapathError("%s %s has sha256 %s on the controller, expected %s; refusing to ship it"
                            % (what, path, digest, expected.lower()))
    return digest
