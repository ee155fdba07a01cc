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
  - Builds a plugin from BPF C source with clang on the target (O(src)), or takes a prebuilt BPF object (O(object)),
    checks that it opens and lists its global functions, stores it content-addressed under O(state_dir),
    and creates and pins its maps under C(<bpffs_root>/plugins/<name>/maps/<map name>).
  - Pinned maps survive every rebuild of the dispatchers that use the plugin, so counters keep counting.
  - A source plugin is also built with its global symbols prefixed C(dpp_<name>__), so two plugins may use the same
    names for maps and functions and still be linked into one dispatcher.
  - When the code of a plugin changes, every dispatcher that uses it is rebuilt and swapped atomically.
requirements:
  - python3-pyroute2 (L(pyroute2,https://pypi.org/project/pyroute2/)) on the target
  - C(libbpf.so.1) on the target (Debian's C(libbpf1)), loaded with ctypes
  - clang with the BPF target and the libbpf headers (Debian's C(clang-19) and C(libbpf-dev)) on the target when
    the plugin is built from O(src); none for a prebuilt O(object)
  - root on the target (BPF, bpffs)
  - bpffs mounted at the parent of O(bpffs_root) (normally C(/sys/fs/bpf))
author:
  - ebpf.datapath contributors (@ebpf-datapath)
extends_documentation_fragment:
  - ebpf.datapath.common
  - ebpf.datapath.attributes
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Compiles into the cache to find out whether the object changed; the kernel is not touched.
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
      - Path on the target of the plugin's BPF C source, compiled with clang (C(-target bpf -g -O2)).
      - Must be a regular file, not a symlink, not writable by group or others.
      - Mutually exclusive with O(object).
    type: path
  object:
    description:
      - Path on the target of a prebuilt BPF object (compiled with C(-g) so it carries BTF).
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
      - Extra include directories for O(src).
    type: list
    elements: path
    default: []
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
rebuilt:
  description: Dispatchers rebuilt because the plugin's code changed.
  returned: always
  type: list
  elements: str
  sample: [web-ingress]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import (
    common_spec, engine, fail, known_errors, report_warnings, require_libs)


def describe(record):
    if not record:
        return ""
    src = record["source"].get("src") or record["source"].get("object")
    return "plugin %s from %s (sha256 %s)\n  functions: %s\n  maps: %s\n" % (
        record["name"], src, record["plain_sha256"][:16],
        ", ".join(sorted(record["functions"])), ", ".join(record["maps"]) or "(none)")


def main():
    module = AnsibleModule(
        argument_spec=common_spec(
            name=dict(type="str", required=True),
            src=dict(type="path"),
            object=dict(type="path"),
            sha256=dict(type="str"),
            cflags=dict(type="list", elements="str", default=[]),
            include_dirs=dict(type="list", elements="path", default=[]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            force=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("src", "object")],
        required_if=[("state", "present", ("src", "object"), True)],
        supports_check_mode=True,
    )
    require_libs(module)
    params = module.params
    if params["sha256"] and not params["object"]:
        module.fail_json(msg="sha256 checks a prebuilt object; give object: with it (src: is compiled on the host)")
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
            changed, record = eng.ensure_plugin(
                params["name"], src=params["src"], obj=params["object"], sha256=params["sha256"],
                cflags=params["cflags"], include_dirs=params["include_dirs"])
            rebuilt = []
            if changed and old and old.get("link_sha256") != record["link_sha256"]:
                rebuilt = eng.dispatchers_using(params["name"])
            plugin = {
                "functions": sorted(record["functions"]),
                "maps": dict((m, eng.layout.plugin_map_pin(params["name"], m)) for m in record["maps"]),
                "sha256": record["plain_sha256"],
            }
            report_warnings(module, eng)
            module.exit_json(changed=changed, plugin=plugin, rebuilt=rebuilt,
                             diff={"before": describe(old), "after": describe(record)})
    except errors as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
