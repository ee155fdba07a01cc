# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's plugin operations (converge.Engine.ensure_plugin and
remove_plugin): build or adopt a plugin's objects, verify them, pin its maps,
record it, and rebuild the dispatchers that use it. Kept apart from
converge.py so a dispatcher task does not compile them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.ebpf.datapath.plugins.module_utils import plugin_store
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.faults import crash_point
from ansible_collections.ebpf.datapath.plugins.module_utils.state import remove_bpffs_tree


def ensure_plugin(engine, name, src=None, obj=None, sha256=None, cflags=(), include_dirs=(), shipped=None,
                  config=None):
    """Returns (changed, schema.Plugin). shipped: the controller's build of
    src (dict link_object, link_sha256, src, src_sha256; obj and sha256 are
    its plain object). config: the plugin's settings ({variable: value})."""
    old = engine.registry.plugins.get(name)
    if shipped:
        record = plugin_store.build_shipped(engine.toolchain.cache_dir, name, obj, sha256, shipped["link_object"],
                                            shipped["link_sha256"], shipped["src"], shipped["src_sha256"],
                                            cflags=cflags, include_dirs=include_dirs)
    else:
        record = plugin_store.build(engine.toolchain, engine.layout, name, src=src, obj=obj, sha256=sha256,
                                    cflags=cflags, include_dirs=include_dirs)
    record = plugin_store.configure(engine.layout, record, config)
    if record.same_build(old) and plugin_store.maps_pinned(engine.layout, old):
        return False, old
    from ansible_collections.ebpf.datapath.plugins.module_utils import plugin_load  # a change loads code: not imported by a no-op
    rebuilds = check_users(engine, name, record) if old is not None else []
    # Every program this change compiles, asked for at once and before
    # anything changes (a host that does not compile gets them from the controller).
    engine.toolchain.require(plugin_load.trial_sources(engine.layout, record) + rebuilds)
    # Verified before anything is stored (also in check mode, which loads
    # and drops a throwaway program: nothing stays).
    plugin_load.verify(engine.toolchain, engine.layout, record)
    if engine.check_mode:
        return True, record
    created = plugin_load.pin_maps(engine.layout, record)
    crash_point("after_map_pin")
    engine.registry.plugins[name] = record
    engine.save()
    # Dispatchers that use this plugin are rebuilt with its new code, or
    # with its new maps when the pins were lost (a reboot, a manual rm).
    if old is not None and (old.link_sha256 != record.link_sha256 or old.config_data != record.config_data
                            or created):
        try:
            for dname in engine.dispatchers_using(name):
                engine.converge_dispatcher(dname, force=created)
        except BaseException:
            # The verifier refused the new code in a dispatcher: keep the old
            # code on record (what the running chains were built from).
            engine.registry.plugins[name] = old
            engine.save()
            for m in set(record.maps) - set(old.maps):
                remove_bpffs_tree(engine.layout.plugin_map_pin(name, m))
            raise
    return True, record


def check_users(engine, name, record):
    """New code for a hooked plugin must still fit every dispatcher using it
    (functions present, signatures right, no symbol clash); refuse before
    anything is stored rather than leave a recipe that cannot be built.
    Returns the generated C ([(name, text)]) their rebuilds compile."""
    # Only a plugin in use with new code gets here: the planner, the generator.
    from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher, planner
    plugins = dict(engine.registry.plugins)
    plugins[name] = record
    sources = []
    for dname in engine.dispatchers_using(name):
        request = engine.registry.dispatchers[dname].request
        try:
            chain, _warnings = planner.solve(dname, request, plugins)
            mode = planner.resolve_mode(request.mode, engine.mode_facts(request, plugins))
            if mode in ("link", "inline"):
                planner.check_link_conflicts(request, chain, plugins)
        except DatapathError as exc:
            raise DatapathError("plugin '%s' is used by dispatcher '%s', which its new code would break: %s"
                                % (name, dname, exc))
        inputs = planner.build_inputs(planner.program_family(request.attach), chain, request.main, plugins, mode,
                                      planner.final_hooks(request), request.stats)
        sources += dispatcher.generated_sources(inputs, plugins)
    return sources


def remove_plugin(engine, name, force=False):
    if name not in engine.registry.plugins and not os.path.exists(engine.layout.plugin_dir(name)):
        return False
    users = engine.registry.hooks_using_plugin(name)
    if users and not force:
        raise DatapathError(
            "plugin '%s' is still hooked (%s); remove those hooks first or set force: true"
            % (name, ", ".join("%s:%s.%s" % (d, h.hook, h.function) for d, h in users)))
    if engine.check_mode:
        return True
    for dname in sorted(set(d for d, _hook in users)):
        request = engine.registry.dispatchers[dname].request
        main = request.main if request.main is not None and request.main.plugin != name else None
        engine.converge_request(dname, request.replace(hooks=[h for h in request.hooks if h.plugin != name], main=main))
    engine.registry.plugins.pop(name, None)
    engine.save()
    plugin_store.remove(engine.layout, name)
    engine.tidy()
    return True
