#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: datapath_info
short_description: Facts about the BPF datapath of a host
version_added: "0.1.0"
description:
  - Reads the host's dispatchers with their chains in order, mode, attach point and generations, and the installed
    plugins with their functions and pinned map paths.
  - Checks each dispatcher against the kernel (is the recorded generation what is attached?).
  - Optionally reads per-program run counts and run time, which the kernel counts while BPF statistics are enabled
    (C(kernel.bpf_stats_enabled=1)).
  - Never changes anything.
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
    details: The module only reads.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  dispatcher:
    description: Only report this dispatcher.
    type: str
  stats:
    description:
      - Add C(run_cnt) and C(run_time_ns) of each running dispatcher program, and, for a dispatcher built with
        O(ebpf.datapath.dispatcher#module:stats=true), the counts of each plugin call (RV(dispatchers[].plugin_stats)).
    type: bool
    default: false
  maps:
    description:
      - Add the contents of each plugin's pinned maps as RV(plugins[].map_values). Keys and values of 1, 2, 4 or 8
        bytes are read as integers; per-CPU values are summed; other sizes are shown as hex.
      - Also adds RV(plugins[].map_entries), each map's entries decoded with the map's BTF as
        M(ebpf.datapath.datapath_map) takes them (structs as dicts, addresses as text, per-CPU values as lists).
    type: bool
    default: false
  render:
    description:
      - Add a picture of each dispatcher's chain (pre plugins, main, post plugins in order, and the kept generations)
        as RV(diagrams), in Mermaid (C(flowchart)) or Graphviz (C(dot)) text.
    type: str
    choices: [mermaid, graphviz]
"""

EXAMPLES = r"""
- name: Read the datapath
  ebpf.datapath.datapath_info:
  register: dp

- name: Show the chain of one dispatcher
  ansible.builtin.debug:
    msg: "{{ (dp.dispatchers | selectattr('name', 'equalto', 'eth0-in') | first).text }}"

- name: Draw the chain of eth0-in with Graphviz
  ebpf.datapath.datapath_info:
    dispatcher: eth0-in
    render: graphviz
  register: pic

- name: Save it for dot -Tpng
  ansible.builtin.copy:
    content: "{{ pic.diagrams['eth0-in'] }}"
    dest: /tmp/eth0-in.dot
    mode: "0644"
  delegate_to: localhost
"""

RETURN = r"""
dispatchers:
  description: Dispatchers recorded on the host.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Dispatcher name.
      type: str
    attach:
      description: Attach point kind.
      type: str
      sample: tc_ingress
    interface:
      description: Interface of the attach point.
      type: str
    netns:
      description: Network namespace of the interface, if any.
      type: str
    mode:
      description: Requested mode.
      type: str
    mode_effective:
      description: Mode the running chain was built in.
      type: str
      sample: link
    tc_backend:
      description: tcx, clsact or xdp, as attached.
      type: str
    chain:
      description: Solved chain as C([plugin, function]) pairs.
      type: dict
    hooks:
      description: Hooks as bound, with constraints and priority.
      type: list
    generation:
      description: Running generation number.
      type: int
    generations:
      description:
        - Kept generations, oldest first, each with C(number), C(prog_id), C(chain), C(current) (the running one) and
          C(pinned) (still pinned, so a rollback to it is possible).
      type: list
    attached:
      description: Whether the kernel runs the recorded generation at the attach point.
      type: bool
    prog_id:
      description: Id of the program attached through our attachment.
      type: int
    text:
      description: The chain in readable form.
      type: str
    stats:
      description: run_cnt and run_time_ns of the program, with O(stats=true).
      type: dict
    plugin_stats:
      description:
        - With O(stats=true), for a dispatcher built with O(ebpf.datapath.dispatcher#module:stats=true), one entry per
          call of its running generation, in chain order (pre hooks, main, post hooks), summed over CPUs since that
          generation was built.
        - C(runs) is the sum of C(continue), C(verdicts) (by name, C(TC_ACT_SHOT), C(XDP_PASS)...) and C(other)
          (verdicts outside 0..15); C(runs_per_cpu) lists runs by CPU.
      type: list
      elements: dict
      version_added: 0.3.0
      sample: [{hook: pre, plugin: acl, function: check, runs: 120, continue: 100, verdicts: {TC_ACT_SHOT: 20},
                other: 0, runs_per_cpu: [70, 50]}]
plugins:
  description: Plugins installed on the host.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Plugin name.
      type: str
    functions:
      description: Global functions a hook can bind.
      type: list
    maps:
      description: Map names mapped to pinned paths.
      type: dict
    used_by:
      description: Dispatchers whose chain uses the plugin.
      type: list
    map_values:
      description: With O(maps=true), each map's entries as a dict of key to value.
      type: dict
      sample: {counts: {"0": 35, "1": 3120}}
    map_entries:
      description:
        - With O(maps=true), each map's entries as a list of C(key), C(value) dicts, typed by the map's BTF (at most
          4096 a map).
      type: dict
      sample: {blocked: [{key: 53, value: true}]}
diagrams:
  description: With O(render), each dispatcher's picture, by dispatcher name.
  returned: when O(render) is set
  type: dict
  sample: {eth0-in: "digraph \"eth0-in\" {\n  rankdir=LR;\n  ...}\n"}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import (
    common_spec, engine, fail, known_errors, report_warnings, require_libs)


def add_stats(eng, dispatchers):
    from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher_stats, libbpf
    from ansible_collections.ebpf.datapath.plugins.module_utils.schema import FunctionRef
    for disp in dispatchers:
        if not disp.get("prog_id"):
            continue
        fd = libbpf.prog_fd_by_id(disp["prog_id"])
        try:
            info = libbpf.prog_info(fd)
            disp["stats"] = {"run_cnt": info.run_cnt, "run_time_ns": info.run_time_ns}
        finally:
            libbpf.close_fd(fd)
        # Per-plugin counts of a generation built with stats: true.
        record = eng.registry.dispatchers[disp["name"]]
        current = record.current_generation()
        if current is None or not (current.build or {}).get("stats"):
            continue
        pin = os.path.join(os.path.dirname(current.prog_pin), dispatcher_stats.PIN_NAME)
        if os.path.exists(pin):
            main = FunctionRef(*current.build["main"]) if current.build.get("main") else None
            calls = dispatcher_stats.counted_calls(current.chain, main)
            disp["plugin_stats"] = dispatcher_stats.read(pin, current.build["kind"], calls)


def add_map_values(plugins):
    from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
    from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned
    from ansible_collections.ebpf.datapath.plugins.module_utils.map_data import decode_map
    for plugin in plugins:
        plugin["map_values"] = dict((name, read_pinned(path)) for name, path in plugin["maps"].items())
        plugin["map_entries"] = {}
        for name, path in plugin["maps"].items():
            try:
                plugin["map_entries"][name] = decode_map(path, limit=4096)
            except DatapathError:  # prog arrays, ring buffers...: no data to show
                continue


def main():
    module = AnsibleModule(
        argument_spec=common_spec(
            dispatcher=dict(type="str"),
            stats=dict(type="bool", default=False),
            maps=dict(type="bool", default=False),
            render=dict(type="str", choices=["mermaid", "graphviz"]),
        ),
        supports_check_mode=True,
    )
    require_libs(module)
    errors = known_errors()
    try:
        # Facts read under the lock too, so they never see a half-applied change.
        module.check_mode = True
        with engine(module) as eng:
            facts = eng.facts()
            if module.params["dispatcher"]:
                facts["dispatchers"] = [d for d in facts["dispatchers"] if d["name"] == module.params["dispatcher"]]
            if module.params["stats"]:
                add_stats(eng, facts["dispatchers"])
            if module.params["maps"]:
                add_map_values(facts["plugins"])
            if module.params["render"]:
                from ansible_collections.ebpf.datapath.plugins.module_utils.render import render
                facts["diagrams"] = dict((d["name"], render(d, module.params["render"])) for d in facts["dispatchers"])
            report_warnings(module, eng)
            module.exit_json(changed=False, **facts)
    except errors as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
