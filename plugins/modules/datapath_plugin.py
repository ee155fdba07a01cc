#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: datapath_plugin
short_description: Install a BPF datapath plugin on a host
version_added: "0.1.0"
description:
  - Builds a plugin from BPF C source with clang (O(src)), on the target or on the controller (O(build_on)), or takes
    a prebuilt BPF object (O(object)), checks that it opens and lists its global functions, stores it content-addressed under O(state_dir),
    and creates and pins its maps under C(<bpffs_root>/plugins/<name>/maps/<map name>).
  - Pinned maps survive every rebuild of the dispatchers that use the plugin, so counters keep counting.
  - A source plugin is also built with its global symbols prefixed C(dpp_<name>__), so two plugins may use the same
    names for maps and functions and still be linked into one dispatcher.
  - When the code of a plugin changes, every dispatcher that uses it is rebuilt and swapped atomically.
requirements:
  - python3-pyroute2 (L(pyroute2,https://pypi.org/project/pyroute2/)) on the target
  - C(libbpf.so.1) on the target (Debian's C(libbpf1)), loaded with ctypes
  - clang with the BPF target and the libbpf headers (Debian's C(clang-19) and C(libbpf-dev)) where the plugin is
    built from O(src) (the target, or the controller with O(build_on=controller)); none for a prebuilt O(object)
  - root on the target (BPF, bpffs)
  - bpffs mounted at the parent of O(bpffs_root) (normally C(/sys/fs/bpf))
author:
  - ebpf.datapath contributors (@ebpf-datapath)
extends_documentation_fragment:
  - ebpf.datapath.common
  - ebpf.datapath.build
  - ebpf.datapath.attributes
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Compiles into the cache (on the build host, see O(build_on)) to find out whether the object changed; the kernel is not touched.
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details: With O(build_on=controller) the action plugin compiles O(src) and the programs that verify the plugin on the
      controller and ships the objects.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
options:
  name:
    description:
      - Name of the plugin. A C identifier of at most 64 characters; it becomes a bpffs path segment and a symbol prefix.
    type: str
    required: true
  src:
    description:
      - Path of the plugin's BPF C source, compiled with clang (C(-target bpf -g -O2)).
      - A path on the B(target) with O(build_on=target), a path on the B(controller) with O(build_on=controller)
        (relative paths are looked up in the role's or playbook's C(files/) directory, as with M(ansible.builtin.template)).
        With O(build_on=auto) it is a controller path when the controller builds (see RV(built_on)).
      - With O(build_on=controller) the controller makes both objects a target would (the plain one and the one with
        its symbols prefixed for linking) and ships them; the target records the plugin as built from O(src).
      - Must be a regular file, not a symlink, not writable by group or others.
      - Mutually exclusive with O(object).
    type: path
  object:
    description:
      - Path of a prebuilt BPF object (compiled with C(-g) so it carries BTF).
      - A path on the target, or on the controller with O(build_on=controller) (then shipped to the target with its
        sha256).
      - Mutually exclusive with O(src).
    type: path
  sha256:
    description:
      - Expected SHA-256 of O(object); the plugin is refused when it differs.
    type: str
  cflags:
    description:
      - Extra clang arguments for O(src), passed as separate arguments (never through a shell).
    type: list
    elements: str
    default: []
  include_dirs:
    description:
      - Extra include directories for O(src); on the host that compiles it, like O(src).
    type: list
    elements: path
    default: []
  config:
    description:
      - Settings of the plugin, variable name to value, written into its global variables before every load, as
        libbpf's skeletons do it; C(const volatile) globals (C(.rodata)) and the initial values of C(.data) and
        C(.bss) ones.
      - Values are typed by the variable's BTF type, with the encodings of M(ebpf.datapath.datapath_map) (integers,
        booleans, enum constants by name, byte arrays as hex text, IPv4, IPv6 and MAC addresses as text where the
        size fits, structs as dicts by field name).
      - A name that is no global variable of those sections (a C(static) one included), or a value that does not
        fit its type, is refused naming the variable and its type; nothing changes.
      - Variables not named keep the value the source gives them. A change rebuilds every dispatcher using the
        plugin (one atomic swap each) and reloads its tail-call targets; the same settings again change nothing.
      - One source may be installed under several names with different settings (plugin instances).
    type: dict
    default: {}
    version_added: 0.3.0
  controller_build:
    description:
      - The controller's build of O(src), set by the action plugin with O(build_on=controller) beside O(object) and
        O(sha256) (the plain object); leave it unset.
      - With it the plugin is recorded as built from O(src), exactly as the target's own build would be, so its
        symbols are prefixed for linking and its entry programs can be hooked in C(link) mode.
    type: dict
    version_added: 0.3.0
    suboptions:
      link_object:
        description: The link object (symbols prefixed C(dpp_<name>__)) on the target.
        type: path
        required: true
      link_sha256:
        description: SHA-256 of O(controller_build.link_object).
        type: str
        required: true
      src:
        description: The source's path on the controller (recorded).
        type: str
        required: true
      src_sha256:
        description: SHA-256 of the source on the controller (recorded).
        type: str
        required: true
  state:
    description:
      - V(present) installs or updates the plugin; V(absent) removes it and unpins its maps.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - With O(state=absent), also remove the plugin while hooks still use it (those hooks are taken out and their
        dispatchers rebuilt first).
    type: bool
    default: false
notes:
  - Plugins are kernel code with root privileges; install only sources and objects you trust.
"""

EXAMPLES = r"""
- name: Install the byte counter from source
  ebpf.datapath.datapath_plugin:
    name: bytecount
    src: /opt/datapath/bytecount.c

- name: Install a prebuilt object, checked against its digest
  ebpf.datapath.datapath_plugin:
    name: firewall
    object: /opt/datapath/firewall.o
    sha256: 3f0a2c9e1b7d4a5c6e8f90123456789abcdef0123456789abcdef0123456789a

- name: Compile on the controller (src is a controller path) and ship the object; the target needs no clang
  ebpf.datapath.datapath_plugin:
    name: bytecount
    src: bytecount.c  # looked up in the role's or playbook's files/
    build_on: controller

- name: Two instances of one source with different settings (const volatile globals)
  ebpf.datapath.datapath_plugin:
    name: "{{ item.name }}"
    src: /opt/datapath/portfilter.c
    config:
      match_port: "{{ item.port }}"
      action: ACTION_DROP  # an enum constant, by name
      only_from: 192.0.2.10  # a __be32, as text
  loop:
    - {name: filter_dns, port: 53}
    - {name: filter_ntp, port: 123}

- name: Remove a plugin that is still hooked somewhere
  ebpf.datapath.datapath_plugin:
    name: oldcounter
    state: absent
    force: true
"""

RETURN = r"""
plugin:
  description: The plugin as recorded on the host.
  returned: when O(state=present)
  type: dict
  contains:
    functions:
      description: Global functions of the plugin, the ones a hook can bind.
      type: list
      elements: str
      sample: [count_packets]
    maps:
      description: Map names mapped to their pinned paths.
      type: dict
      sample: {counts: /sys/fs/bpf/ebpf-datapath/plugins/counter/maps/counts}
    sha256:
      description: SHA-256 of the plain object.
      type: str
      sample: 3f0a2c9e1b7d4a5c6e8f90123456789abcdef0123456789abcdef0123456789a
    config:
      description: The settings in force, as given in O(config).
      type: dict
      sample: {match_port: 53, action: ACTION_DROP}
      version_added: 0.3.0
    prog_arrays:
      description:
        - The plugin's prog arrays (tail calls), pinned under its C(maps/) directory with the targets the install loaded.
        - Each dispatcher build loads the targets again into prog arrays of its own (unless declared pinned by name),
          so a chain change swaps them with the chain and a rollback brings back the old ones.
      type: list
      elements: str
      sample: [stages]
      version_added: 0.3.0
built_on:
  description:
    - Where O(src) was compiled, V(controller) or V(target) (O(build_on=auto) says which it picked here), or
      V(controller) when the controller compiled the programs that verify a prebuilt O(object).
  returned: when O(state=present) and O(src) is given, or when the controller built
  type: str
  sample: controller
controller_clang_runs:
  description: How many times clang ran on the controller for this task (C(0) when its cache had every object).
  returned: when RV(built_on=controller)
  type: int
  sample: 2
build_cached:
  description: Whether the controller found the object in its cache (clang did not run for this task).
  returned: when RV(built_on=controller)
  type: bool
  sample: true
rebuilt:
  description: Dispatchers rebuilt because the plugin's code or settings changed.
  returned: always
  type: list
  elements: str
  sample: [web-ingress]
"""

import hashlib
import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import (
    build_spec, engine, fail, known_errors, report_warnings, require_libs)


def describe(record):
    if not record:
        return ""
    src = record["source"].get("src") or record["source"].get("object")
    text = "plugin %s from %s (sha256 %s)\n  functions: %s\n  maps: %s\n" % (
        record["name"], src, record["plain_sha256"][:16],
        ", ".join(sorted(record["functions"])), ", ".join(record["maps"]) or "(none)")
    for name, value in sorted(record["config"].items()):
        text += "  config %s: %s\n" % (name, json.dumps(value, sort_keys=True))
    return text


def shipped_object(eng, path, digest, check_mode):
    """The object store's path for an object the controller built and shipped
    (build_on: controller): Ansible puts it in a new remote tmp dir on every run,
    and the store path keeps the plugin's recorded source the same, so a rerun
    reports no change. Returns (path to install from, whether this call stored it)."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.files import atomic_write
    from ansible_collections.ebpf.datapath.plugins.module_utils.plugin_store import PluginError, check_input_file
    stored = eng.layout.object_path(digest)
    if os.path.exists(stored):
        return stored, False
    if check_mode:
        return path, False
    check_input_file(path, "shipped object")
    with open(path, "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != digest:
        raise PluginError("shipped object %s does not have sha256 %s; run the task again" % (path, digest))
    atomic_write(stored, data)
    return stored, True


def main():
    module = AnsibleModule(
        argument_spec=build_spec(
            name=dict(type="str", required=True),
            src=dict(type="path"),
            object=dict(type="path"),
            sha256=dict(type="str"),
            cflags=dict(type="list", elements="str", default=[]),
            include_dirs=dict(type="list", elements="path", default=[]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            force=dict(type="bool", default=False),
            config=dict(type="dict", default={}),
            controller_build=dict(type="dict", options=dict(
                link_object=dict(type="path", required=True),
                link_sha256=dict(type="str", required=True),
                src=dict(type="str", required=True),
                src_sha256=dict(type="str", required=True),
            )),
        ),
        mutually_exclusive=[("src", "object")],
        required_if=[("state", "present", ("src", "object"), True)],
        supports_check_mode=True,
    )
    require_libs(module)
    params = module.params
    if params["sha256"] and not params["object"]:
        module.fail_json(msg="sha256 checks a prebuilt object; give object: with it (src: is compiled on the host)")
    if params["build_on"] == "controller" and params["src"]:
        module.fail_json(msg="build_on: controller compiles src on the controller, in the action plugin of "
                             "ebpf.datapath.datapath_plugin; this module got src, so it was run without it. "
                             "Run it as a task of a play, or use build_on: target")
    built = params["controller_build"]
    if built and not (params["object"] and params["sha256"]):
        module.fail_json(msg="controller_build comes with object and sha256 (the plain object), set by the action "
                             "plugin of ebpf.datapath.datapath_plugin; leave it unset")
    # A prebuilt object the controller shipped (no controller_build) is kept in
    # the object store, so its recorded path does not change from run to run.
    shipped = params["build_on"] == "controller" and params["object"] and params["sha256"] and not built
    errors = known_errors()
    from ansible_collections.ebpf.datapath.plugins.module_utils.naming import check_name
    try:
        check_name(params["name"], "plugin")
        with engine(module) as eng:
            old = eng.registry.plugins.get(params["name"])
            if params["state"] == "absent":
                users = eng.dispatchers_using(params["name"])
                changed = eng.remove_plugin(params["name"], force=params["force"])
                report_warnings(module, eng)
                module.exit_json(changed=changed, rebuilt=users if changed else [],
                                 diff={"before": describe(old), "after": ""})
            obj, stored = params["object"], False
            if shipped:
                obj, stored = shipped_object(eng, obj, params["sha256"].lower(), module.check_mode)
            try:
                changed, record = eng.ensure_plugin(
                    params["name"], src=params["src"], obj=obj, sha256=params["sha256"],
                    cflags=params["cflags"], include_dirs=params["include_dirs"], shipped=built,
                    config=params["config"])
            except BaseException:
                if stored and params["sha256"].lower() not in eng.registry.data.referenced_objects():
                    os.unlink(obj)
                raise
            rebuilt = []
            if changed and old and (old.get("link_sha256") != record["link_sha256"]
                                    or old.get("config_data") != record["config_data"]):
                rebuilt = eng.dispatchers_using(params["name"])
            plugin = {
                "functions": sorted(record["functions"]),
                "maps": dict((m, eng.layout.plugin_map_pin(params["name"], m)) for m in record["maps"]),
                "sha256": record["plain_sha256"],
                "config": record["config"],
                "prog_arrays": record["prog_arrays"],
            }
            extra = {"built_on": "target"} if params["src"] else {"built_on": "controller"} if built else {}
            report_warnings(module, eng)
            module.exit_json(changed=changed, plugin=plugin, rebuilt=rebuilt,
                             diff={"before": describe(old), "after": describe(record)}, **extra)
    except errors as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
