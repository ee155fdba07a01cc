# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the modules that compile (see module_utils/module_common.py BUILD_ARGS)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  build_on:
    description:
      - Where the BPF programs this task needs are compiled. Besides a plugin's O(ebpf.datapath.datapath_plugin#module:src),
        a host compiles C it generates itself; the dispatcher program of each chain, the programs that verify a plugin
        when it is installed, and the wrappers of C(freplace) mode.
      - V(target) compiles on the target with its clang (the target needs clang and the libbpf headers).
      - V(controller) compiles on the controller with the collection's own toolchain into a content-addressed cache
        shared by every host of the play (C($EBPF_DATAPATH_CONTROLLER_CACHE_DIR), else C($EBPF_DATAPATH_CACHE_DIR), else
        C(~/.cache/ebpf-datapath/controller) on the controller) and ships the objects with their sha256; the target runs
        no compiler. The target plans first and, before it changes anything, names the programs it needs; the action
        plugin compiles those and runs the module again with them. The target keeps them in its compile cache, so a rerun,
        or M(ebpf.datapath.datapath_restore) at boot, finds them there.
      - An object built on the controller is byte for byte what the target would build from the same input with the same
        clang. The controller and the targets must share a CPU architecture family for programs that include
        architecture-specific headers.
      - V(auto) compiles on the controller when it has a usable clang, else on the target; the result says which
        (RV(built_on)).
    type: str
    choices: [controller, target, auto]
    default: target
    version_added: 0.3.0
  generated_objects:
    description:
      - Objects of generated C that the action plugin compiled on the controller, as a list of dicts with C(key) (the
        sha256 of the source's name and text), C(path) (on the target) and C(sha256) (of the object).
      - Set by the action plugin with O(build_on=controller); leave it unset.
    type: list
    elements: dict
    default: []
    version_added: 0.3.0
"""
