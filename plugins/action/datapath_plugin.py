# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ebpf.datapath.datapath_plugin: where the plugin is built.

``build_on: target`` (the default) runs the module unchanged: the target
compiles ``src`` with its own clang. ``build_on: controller`` builds the plugin
here exactly as a target would (module_utils/plugin_store.build: the plain
object, and the link object with its symbols prefixed for linking), ships both
to the target's remote tmp dir and runs the module with them
(``object``/``sha256`` and ``controller_build``): the target checks their
sha256 and records the plugin as built from ``src``. The programs that verify
the plugin on the target are compiled here too, when the target asks
(plugin_utils/controller_build.py). A prebuilt ``object`` given with
``build_on: controller`` is a controller path and is shipped the same way.
``auto`` builds here when this controller has a usable clang and ``src`` is a
file here, else on the target. The result says where: ``built_on``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.plugin_utils.controller_build import (
    BuildingAction, checked_digest, compile_lock, local_file)


class ActionModule(BuildingAction):

    MODULE = "ebpf.datapath.datapath_plugin"

    def builds(self, args):
        if (args.get("state") or "present") == "absent":
            return True  # a forced removal rebuilds the dispatchers that used it
        if bool(args.get("src")) == bool(args.get("object")):
            return False  # options the module refuses with its own message
        if args.get("src") and args.get("sha256"):
            return False  # the module says what is wrong with these
        if args.get("build_on") == "auto" and args.get("src"):
            try:
                local_file(self, args["src"], "src")
            except DatapathError:
                self._display.vvv("datapath_plugin: %s is no file on the controller: building on the target"
                                  % args["src"])
                return False
        return True

    def prepare(self, builder, args, task_vars):
        from ansible_collections.ebpf.datapath.plugins.module_utils import plugin_store
        args = dict(args)
        if (args.get("state") or "present") == "absent":
            return args
        if args.get("object"):
            local = local_file(self, args["object"], "object")
            digest = checked_digest(local, args.get("sha256"), "object")
            args.update(object=self.ship(local, "plugin-%s.o" % digest[:16]), sha256=digest)
            return args
        src = os.path.abspath(local_file(self, args["src"], "src"))
        include_dirs = [os.path.abspath(os.path.expanduser(d)) for d in args.get("include_dirs") or []]
        for inc in include_dirs:
            if not os.path.isdir(inc):
                raise DatapathError("include directory %s does not exist on the controller (with build_on: "
                                    "controller, include_dirs are controller paths)" % inc)
        runs = builder.toolchain.clang_runs
        with compile_lock(builder):
            try:
                record = plugin_store.build(builder, None, args["name"], src=src, cflags=args.get("cflags") or [],
                                            include_dirs=include_dirs)
            except plugin_store.PluginError as exc:
                msg = str(exc)
                if msg.startswith("clang could not compile"):
                    msg = msg.replace(":\n", " on the controller:\n", 1)
                raise DatapathError(msg, log=exc.log)
        self.clang_runs += builder.toolchain.clang_runs - runs
        self.build_cached = builder.toolchain.clang_runs == runs
        plain = plugin_store.staged_path(record.plain_sha256)
        link = plugin_store.staged_path(record.link_sha256)
        args.pop("src")
        args.update(
            object=self.ship(plain, "plugin-%s.o" % record.plain_sha256[:16]),
            sha256=record.plain_sha256,
            include_dirs=include_dirs,
            controller_build={"link_object": self.ship(link, "plugin-link-%s.o" % record.link_sha256[:16]),
                              "link_sha256": record.link_sha256, "src": src, "src_sha256": record.source["sha256"]})
        return args

    def run(self, tmp=None, task_vars=None):
        self.build_cached = None
        result = BuildingAction.run(self, tmp, task_vars)
        if self.build_cached is not None:
            result["build_cached"] = self.build_cached
        return result
