# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A read-only view of a host (converge.Engine.facts, the datapath_info
module): every dispatcher and plugin on record, with kernel liveness.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.ebpf.datapath.plugins.module_utils import planner
from ansible_collections.ebpf.datapath.plugins.module_utils.attach import AttachPoint, attached_prog_id


def facts(engine):
    """A read-only view of the registry, with kernel liveness."""
    dispatchers = []
    for name, disp in sorted(engine.registry.dispatchers.items()):
        running = None
        if disp.attachment is not None:
            try:
                running = attached_prog_id(AttachPoint.of(disp.request), disp.attachment)
            except Exception as exc:  # facts must not fail on one broken attach point
                engine.warnings.append("dispatcher %s: %s" % (name, exc))
        current = disp.current_generation()
        request = disp.request
        dispatchers.append({
            "name": name,
            "attach": request.attach,
            "interface": request.interface,
            "netns": request.netns,
            "mode": request.mode,
            "mode_effective": disp.mode_effective,
            "tc_backend": disp.attachment.backend if disp.attachment is not None else None,
            "main": request.main.to_json() if request.main is not None else None,
            "hooks": [h.to_json() for h in request.hooks],
            "chain": disp.chain.to_json(),
            "generation": disp.generation,
            "generations": [{"number": g.number, "prog_id": g.prog_id, "chain": g.chain.to_json(),
                             "current": g.number == disp.generation, "pinned": os.path.exists(g.prog_pin)}
                            for g in disp.generations],
            "attached": running is not None and current is not None and running == current.prog_id,
            "prog_id": running,
            "attachment": disp.attachment.to_json() if disp.attachment is not None else None,
            "text": planner.describe_dispatcher(disp),
        })
    plugins = []
    for name, record in sorted(engine.registry.plugins.items()):
        plugins.append({
            "name": name,
            "source": record.source,
            "functions": sorted(record.functions),
            "maps": dict((m, engine.layout.plugin_map_pin(name, m)) for m in record.maps),
            "used_by": engine.dispatchers_using(name),
        })
    return {"dispatchers": dispatchers, "plugins": plugins}
