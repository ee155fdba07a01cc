#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: datapath_hook
short_description: Bind a plugin function to the pre or post chain of a dispatcher
version_added: "0.1.0"
description:
  - Binds one global function of an installed plugin (M(ebpf.datapath.datapath_plugin)) to the C(pre) or C(post) hook
    of a dispatcher (M(ebpf.datapath.dispatcher)), with ordering constraints and a priority for ties.
  - The dispatcher's chain is solved again and the new dispatcher is swapped in atomically. A cycle in the constraints
    fails, naming the cycle plugin by plugin, and changes nothing.
  - A C(pre) function takes the packet context (C(struct __sk_buff *ctx), or C(struct xdp_md *ctx) at XDP) and returns
    an C(int); a C(post) function takes the context and C(int verdict) and returns an C(int). Return C(-1) to continue;
    any other value ends the chain with that verdict.
  - An entry program, a function written as a program of its own in ELF section C(tc), C(classifier),
    C(tcx/ingress), C(xdp) and the like (libbpf's C(SEC) macro), can be bound to either hook unchanged. It takes the context
    only and returns its own verdicts; its pass verdict (C(TC_ACT_OK), C(XDP_PASS)) and C(-1) let the packet on to
    the rest of the chain, any other verdict (C(TC_ACT_SHOT), C(XDP_DROP), C(XDP_TX), ...) ends the chain with it.
    At C(post) its pass keeps the verdict so far. A C(tc) program runs at tc attach points and Cilium slots, an XDP
    program at C(xdp). In V(link) mode the entry programs of a plugin built from C(src) are made plain functions
    when the plugin is compiled (the source is not changed), so the call costs what any hook call costs; those of a
    prebuilt C(object) can be hooked in V(freplace) mode only. The mapping of its verdict is one more compare on the
    packet path, too little to measure (C(make bench-quick) times entry programs and plain hooks in one run,
    C(ns_per_entry_hook_link) against C(ns_per_plain_hook_link)).
  - A hook may also take the headers the dispatcher parsed once for the whole chain, declared as a second parameter
    C(const struct dp_pkt *pkt) (from C(ebpf_datapath.h)); a C(post) function then takes ctx, pkt and verdict.
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
    details: The diff shows the dispatcher's chain before and after.
options:
  dispatcher:
    description: Name of the dispatcher.
    type: str
    required: true
  plugin:
    description: Name of the installed plugin.
    type: str
    required: true
  function:
    description: Global function of the plugin to bind.
    type: str
    required: true
  hook:
    description: V(pre) runs before the main program, V(post) after it with the verdict so far.
    type: str
    choices: [pre, post]
    default: pre
  constraints:
    description:
      - "Ordering constraints relative to other plugins at the same hook, as C({anchor: before|after, plugin: NAME}) or
        Cilium's C({order: BEFORE|AFTER, plugin: NAME})."
      - A constraint on a plugin that is not hooked there is ignored with a warning, unless the dispatcher sets
        C(strict_constraints).
    type: list
    elements: dict
    default: []
  priority:
    description: Breaks ties among functions no constraint orders; lower runs first, then by plugin and function name.
    type: int
    default: 50
  verdict:
    description:
      - How the verdict of an entry program bound here enters the chain. V(pass_continues) lets the packet on when it
        returns its pass verdict (C(TC_ACT_OK), C(XDP_PASS)) or C(-1) and ends the chain with any other verdict.
        V(final) ends the chain with whatever it returns, pass included; the functions after it do not run.
      - Only for entry programs; a hook function ends the chain by returning anything but C(-1).
    type: str
    choices: [pass_continues, final]
    default: pass_continues
  state:
    description: V(present) binds the function; V(absent) takes it out of the chain.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Count packets before the firewall decides
  ebpf.datapath.datapath_hook:
    dispatcher: eth0-in
    plugin: counter
    function: count_packets
    hook: pre
    constraints:
      - anchor: before
        plugin: firewall

- name: The same constraint in Cilium's form
  ebpf.datapath.datapath_hook:
    dispatcher: eth0-in
    plugin: counter
    function: count_packets
    constraints:
      - order: BEFORE
        plugin: firewall

- name: Take it out again
  ebpf.datapath.datapath_hook:
    dispatcher: eth0-in
    plugin: counter
    function: count_packets
    state: absent
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
chain:
  description: The dispatcher's solved chain after the change, as C([plugin, function]) pairs.
  returned: always
  type: dict
  sample: {pre: [[counter, count_packets], [firewall, drop_blocked]], post: []}
generation:
  description: The dispatcher's running generation after the change.
  returned: always
  type: int
  sample: 5
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ebpf.datapath.plugins.module_utils.defaults import DEFAULT_HOOK, DEFAULT_PRIORITY
from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import (
    build_spec, diff_of, engine, fail, known_errors, report_warnings, require_libs)


def main():
    module = AnsibleModule(
        argument_spec=build_spec(
            dispatcher=dict(type="str", required=True),
            plugin=dict(type="str", required=True),
            function=dict(type="str", required=True),
            hook=dict(type="str", choices=["pre", "post"], default=DEFAULT_HOOK),
            constraints=dict(type="list", elements="dict", default=[]),
            priority=dict(type="int", default=DEFAULT_PRIORITY),
            verdict=dict(type="str", choices=["pass_continues", "final"], default="pass_continues"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    require_libs(module)
    p = module.params
    errors = known_errors()
    from ansible_collections.ebpf.datapath.plugins.module_utils.naming import check_name
    from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Hook
    try:
        check_name(p["dispatcher"], "dispatcher")
        entry = Hook.normalise(p).to_json()
        with engine(module) as eng:
            result = eng.set_hook(p["dispatcher"], entry, present=(p["state"] == "present"))
            report_warnings(module, eng)
            module.exit_json(changed=result["changed"], chain=result.get("chain"), generation=result.get("generation"),
                             diff=diff_of(result))
    except errors as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
