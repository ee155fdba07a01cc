#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: datapath_map
short_description: Set the entries of a plugin's pinned BPF map
version_added: "0.3.0"
description:
  - Makes entries of a map of an installed plugin (pinned at C(<bpffs_root>/plugins/<plugin>/maps/<map>)) hold the
    given values, or removes them.
  - Keys and values are given in YAML and typed by the map's BTF, as the kernel holds it for the pinned map
    (so they always match the map that is there, whatever the plugin's code says today). Integers (any size,
    signed or not), C(bool), enums by constant name or number, C(u8)/C(char) arrays as hex text or a list of byte
    values, IPv4 addresses as C(10.0.0.1) where the type is 4 bytes, MAC addresses as C(aa:bb:cc:dd:ee:ff) where it
    is 6, IPv6 addresses as text where it is 16, structs as dicts by field name (missing fields are 0), other arrays
    as lists. Addresses are stored in network byte order, integers in host order.
  - A map made without BTF takes integers for keys and values of 1, 2, 4 or 8 bytes and hex text otherwise.
  - Every entry is checked before the first write; a wrong field name, type or size, or more entries than the
    map's C(max_entries), fails the task with the map untouched.
  - Writes use the kernel's batch operations where the map type has them (hash, LRU hash, array and their per-CPU
    flavours), else one entry at a time.
requirements:
  - C(libbpf.so.1) on the target (Debian's C(libbpf1)), loaded with ctypes
  - root on the target (BPF, bpffs)
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
    details: The diff lists added (C(+)), removed (C(-)) and changed (C(~)) entries, one a line.
options:
  plugin:
    description: Name of the installed plugin (M(ebpf.datapath.datapath_plugin)) that owns the map.
    type: str
    required: true
  map:
    description: Name of the map as the plugin declares it.
    type: str
    required: true
  entries:
    description:
      - The entries, each a dict with C(key) and, with O(state=present), C(value).
      - For a per-CPU map C(value) is either one value for every CPU or a list of one value per possible CPU.
    type: list
    elements: dict
    default: []
  state:
    description:
      - V(present) makes each key hold its value.
      - V(absent) removes each key (C(value) is not needed). An array map cannot remove an index; its value is set to
        zero instead.
    type: str
    choices: [present, absent]
    default: present
  exact:
    description:
      - With O(state=present), the map holds exactly O(entries) afterwards; every other key is removed (set to zero
        in an array map).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Block two UDP ports in the firewall plugin's map
  ebpf.datapath.datapath_map:
    plugin: firewall
    map: blocked_ports
    entries:
      - {key: 53, value: true}
      - {key: 5353, value: true}

- name: Set a table of struct keys and values, and nothing else
  ebpf.datapath.datapath_map:
    plugin: lb
    map: backends
    exact: true
    entries:
      - key: {addr: 10.0.0.1, port: 80, proto: TCP}
        value: {mac: "aa:bb:cc:dd:ee:01", weight: 3}

- name: Remove one entry
  ebpf.datapath.datapath_map:
    plugin: lb
    map: backends
    state: absent
    entries:
      - key: {addr: 10.0.0.1, port: 80, proto: TCP}
"""

RETURN = r"""
entries:
  description: Number of entries in the map after the task (predicted in check mode).
  returned: success
  type: int
  sample: 2
added:
  description: Number of keys the task adds.
  returned: success
  type: int
changed_entries:
  description: Number of keys whose value the task changes (array entries set to zero included).
  returned: success
  type: int
removed:
  description: Number of keys the task removes.
  returned: success
  type: int
diff:
  description:
    - The entries added, removed and changed, as text in C(prepared) (one a line, C(+), C(-), C(~)).
    - Empty unless the task runs in diff mode (C(--diff)).
  returned: success
  type: dict
  sample: {prepared: "+ {\"port\": 53}: true\n"}
elapsed:
  description: Seconds the task spent on the map (open, read, plan, write).
  returned: success
  type: float
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import (
    common_spec, engine, fail, known_errors)


def map_path(eng, plugin, name):
    """The pin of the plugin's map; a missing plugin, map or pin says how to fix it."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.map_data import MapDataError
    record = eng.registry.plugins.get(plugin)
    if record is None:
        raise MapDataError("plugin %r is not installed on this host (installed: %s): install it with "
                           "ebpf.datapath.datapath_plugin first, or check the name and bpffs_root/state_dir"
                           % (plugin, ", ".join(sorted(eng.registry.plugins)) or "none"))
    if name not in record.maps:
        raise MapDataError("plugin %r has no map %r; its maps are: %s"
                           % (plugin, name, ", ".join(sorted(record.maps)) or "none"))
    path = eng.layout.plugin_map_pin(plugin, name)
    if not os.path.exists(path):
        raise MapDataError("map %r of plugin %r is not pinned at %s: run ebpf.datapath.datapath_restore "
                           "(after a reboot) or install the plugin again" % (name, plugin, path))
    return path


def run(module, eng):
    from ansible_collections.ebpf.datapath.plugins.module_utils import map_data
    params = module.params
    if params["exact"] and params["state"] == "absent":
        raise map_data.MapDataError("exact: true works with state: present only")
    path = map_path(eng, params["plugin"], params["map"])
    start = time.monotonic()
    with map_data.TypedMap(path) as tmap:
        # Everything is encoded and checked before the first write.
        wanted = map_data.encode_entries(tmap.format, params["entries"], params["state"])
        current = tmap.read()
        change = map_data.plan(tmap.format, current, wanted, params["state"], params["exact"], tmap.is_array)
        map_data.check_capacity(tmap, current, change)
        if change.has_changes and not module.check_mode:
            tmap.apply(change)
        count = len(current) + len(change.added) - len(change.removed)
    return dict(changed=change.has_changes, entries=count, added=len(change.added),
                removed=len(change.removed), changed_entries=len(change.changed),
                diff={"prepared": change.diff_text() if module._diff else ""},
                elapsed=round(time.monotonic() - start, 4))


def main():
    module = AnsibleModule(
        argument_spec=common_spec(
            plugin=dict(type="str", required=True),
            map=dict(type="str", required=True),
            entries=dict(type="list", elements="dict", default=[]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            exact=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        with engine(module) as eng:
            result = run(module, eng)
        module.exit_json(**result)
    except known_errors() as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
