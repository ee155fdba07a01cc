#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: datapath_restore
short_description: Re-apply a host's recorded datapath after a reboot
version_added: "0.2.0"
description:
  - bpffs is empty after a reboot, so the pinned plugin maps, dispatcher programs and links are gone while the
    recipe in O(state_dir) remains. This module re-pins every plugin's maps (from the stored objects; map contents
    start empty), rebuilds every dispatcher whose running program or pins are gone and attaches it again.
  - Reports C(changed) only when it rebuilt or re-pinned something; on a host whose datapath runs as recorded it
    changes nothing.
  - Older generations cannot come back after a reboot and are forgotten; the running chain gets a new generation.
  - Meant to run at boot (the role P(ebpf.datapath.datapath_boot#role) installs a systemd unit that runs it from the
    collection's own files); a rerun of the playbook converges the same way.
requirements:
  - python3-pyroute2 (L(pyroute2,https://pypi.org/project/pyroute2/)) on the target
  - C(libbpf.so.1) on the target (Debian's C(libbpf1)), loaded with ctypes
  - clang with the BPF target and the libbpf headers (Debian's C(clang-19) and C(libbpf-dev)) on the target,
    where the dispatcher's BPF C, generated for its chain, is compiled (a build already in the compile cache
    under O(state_dir) is reused)
  - root on the target (BPF, bpffs, netlink)
  - bpffs mounted at the parent of O(bpffs_root) (normally C(/sys/fs/bpf))
author:
  - ebpf.datapath contributors (@ebpf-datapath)
extends_documentation_fragment:
  - ebpf.datapath.common
  - ebpf.datapath.build
  - ebpf.datapath.attributes
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details: With O(build_on=controller) the action plugin compiles the programs the target generates and ships them.
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff shows each rebuilt dispatcher's chain.
options: {}
"""

EXAMPLES = r"""
- name: Bring back every recorded chain (what the boot unit runs)
  ebpf.datapath.datapath_restore:
    state_dir: /var/lib/ebpf-datapath
"""

RETURN = r"""
built_on:
  description:
    - V(controller) when the programs this task needed were compiled on the controller (O(build_on=controller), or
      O(build_on=auto) on a controller with clang).
  returned: when the controller built
  type: str
  sample: controller
controller_clang_runs:
  description: How many times clang ran on the controller for this task (C(0) when its cache had every object).
  returned: when RV(built_on=controller)
  type: int
  sample: 1
plugins:
  description: Plugins whose maps were pinned again.
  returned: always
  type: list
  elements: str
  sample: [counter]
dispatchers:
  description: Each dispatcher with whether it was rebuilt and the generation it runs.
  returned: always
  type: list
  elements: dict
  sample: [{name: eth0-in, changed: true, generation: 4}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import (
    build_spec, engine, fail, known_errors, report_warnings, require_libs)


def main():
    module = AnsibleModule(argument_spec=build_spec(), supports_check_mode=True)
    require_libs(module)
    errors = known_errors()
    try:
        with engine(module) as eng:
            result = eng.restore()
            report_warnings(module, eng)
        rebuilt = [r for r in result["dispatchers"] if r["changed"]]
        module.exit_json(
            changed=result["changed"],
            plugins=result["plugins"],
            dispatchers=[{"name": r["name"], "changed": r["changed"], "generation": r["generation"]}
                         for r in result["dispatchers"]],
            diff={"before": "".join(r["before"] for r in rebuilt), "after": "".join(r["after"] for r in rebuilt)})
    except errors as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
