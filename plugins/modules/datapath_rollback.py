#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: datapath_rollback
short_description: Roll dispatchers back to a kept generation, one atomic swap each
version_added: "0.2.0"
description:
  - Every chain a dispatcher runs is a numbered generation, kept pinned with its programs and links (the last
    O(ebpf.datapath.dispatcher#module:keep_generations) of them). This module makes a kept generation the running one
    again with one atomic swap at the attach point, and restores the dispatcher's recorded hooks and main to what that
    generation ran, so a later run of the same module or role that asked for that chain reports no change.
  - Generation numbers only grow; a change applied after a rollback gets the next unused number.
  - Rolling back to the generation that already runs changes nothing, so a task that names the exact generation
    (for example one read with M(ebpf.datapath.datapath_info) before a change) is idempotent.
  - After a reboot only the running generation is rebuilt (M(ebpf.datapath.datapath_restore)); older ones are gone.
requirements:
  - python3-pyroute2 (L(pyroute2,https://pypi.org/project/pyroute2/)) on the target
  - C(libbpf.so.1) on the target (Debian's C(libbpf1)), loaded with ctypes
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
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff shows each dispatcher's chain before and after.
options:
  dispatcher:
    description:
      - Name of the dispatcher to roll back. Omitted, every dispatcher on the host is rolled back.
    type: str
  generation:
    description:
      - Generation number to run. Omitted, the newest kept generation older than the running one.
      - With O(dispatcher) omitted, the same number is used for every dispatcher; leave it out to step each back once.
    type: int
"""

EXAMPLES = r"""
- name: Remember what runs before a change
  ebpf.datapath.datapath_info:
    dispatcher: eth0-in
  register: before

- name: Step eth0-in back to the chain it ran before
  ebpf.datapath.datapath_rollback:
    dispatcher: eth0-in
    generation: "{{ before.dispatchers[0].generation }}"

- name: Step every dispatcher on the host back once
  ebpf.datapath.datapath_rollback:
"""

RETURN = r"""
dispatchers:
  description: What each dispatcher ran before and runs now.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Dispatcher name.
      type: str
    from:
      description: Generation that ran before.
      type: int
    to:
      description: Generation that runs now.
      type: int
    changed:
      description: Whether this dispatcher was swapped.
      type: bool
  sample: [{name: eth0-in, from: 4, to: 3, changed: true}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import (
    common_spec, engine, fail, known_errors, require_libs)


def main():
    module = AnsibleModule(
        argument_spec=common_spec(
            dispatcher=dict(type="str"),
            generation=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    require_libs(module)
    p = module.params
    errors = known_errors()
    from ansible_collections.ebpf.datapath.plugins.module_utils.naming import check_name
    try:
        if p["dispatcher"] is not None:
            check_name(p["dispatcher"], "dispatcher")
        with engine(module) as eng:
            if p["dispatcher"] is not None:
                names = [p["dispatcher"]]
            else:
                names = sorted(eng.registry.dispatchers)
            results = [eng.rollback(name, p["generation"]) for name in names]
        changed = any(r["changed"] for r in results)
        module.exit_json(
            changed=changed,
            dispatchers=[dict((k, r[k]) for k in ("name", "from", "to", "changed")) for r in results],
            diff={"before": "".join(r["before"] for r in results), "after": "".join(r["after"] for r in results)})
    except errors as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
