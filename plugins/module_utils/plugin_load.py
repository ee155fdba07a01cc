# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A plugin's code going into the kernel (plugin_store.py builds and stores it):
verify it before anything is stored (throwaway trial loads; the verifier's
reason named by source line), create and pin its maps, and what every load of
its code needs (settings, tail-call targets). A no-op rerun of datapath_plugin
loads nothing and does not import this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.ebpf.datapath.plugins.module_utils.plugin_store import (
    PluginError, object_file, settings_module, store_objects)
from ansible_collections.ebpf.datapath.plugins.module_utils.state import remove_empty_dirs


def tail_call_targets(record, linked):
    """{program name: family} the object running record's code loads beside it:
    in a plugin with a prog array, its packet programs that are still programs
    there (in a linked object the entry programs moved to .text are
    functions), so that libbpf fills the array's declared slots with them."""
    if not record.prog_arrays:
        return {}
    out = {}
    for fn, entry in record.entries.items():
        if not entry["family"]:
            continue
        if linked:
            if fn in record.link_entries:
                continue
            out[record.link_symbols.get(fn, fn)] = entry["family"]
        else:
            out[fn] = entry["family"]
    return out


def prepare_plugin_code(obj, records, linked):
    """Before load of an opened object that runs these plugins' code (the
    linked dispatcher or a trial: linked=True; a plain or extension object:
    False): their tail-call targets load with it (autoload on, the program
    type of their family where libbpf 1.1 knows none) and their settings are
    written into its globals. Programs the caller switched on stay on."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf, object_info
    values = []
    for record in records:
        targets = tail_call_targets(record, linked)
        if targets:
            for prog in obj.programs():
                family = targets.get(prog.name)
                if family is None:
                    continue
                prog.set_autoload(True)
                if prog.type == libbpf.BPF_PROG_TYPE_UNSPEC:
                    prog.set_type(object_info.PROG_TYPES[family])
        if record.config_data:
            values += settings_module().symbols(record, linked)
    if not values:
        return
    try:
        settings_module().apply(obj, values)
    except settings_module().ConfigError as exc:
        raise PluginError("%s; install the plugin again" % exc)


# The context type of a hookable function's first parameter -> program family.
_CTX_FAMILIES = {"struct __sk_buff *": "tc", "struct xdp_md *": "xdp"}


def trial_shape(record, function):
    """(family, hook) a function is verified as, or None when it cannot be
    hooked (a helper with other parameters, a kprobe): entry programs as a pre
    hook of their family, hook functions by their parameters."""
    entry = record.entries.get(function)
    if entry is not None:
        return (entry["family"], "pre") if entry["family"] else None
    params = [t.replace("const ", "") for t in record.functions[function]["params"]]
    family = _CTX_FAMILIES.get(params[0]) if params else None
    if params[1:2] == ["struct dp_pkt *"]:  # takes the chain's parse (ebpf_datapath.h)
        params = params[:1] + params[2:]
    if family is None or params[1:] not in ([], ["int"]):
        return None
    return family, "post" if params[1:] else "pre"


def _trials(layout, record):
    """(function, family, hook, how) for each function verify() loads: how is
    "program" for an entry program loaded as itself, "trial" for one called
    from a throwaway dispatcher."""
    out = []
    for function in sorted(record.functions):
        shape = trial_shape(record, function)
        if shape is None:
            continue
        itself = function in record.entries and function not in record.link_entries
        out.append((function, shape[0], shape[1], "program" if itself else "trial"))
    return out


def trial_sources(layout, record):
    """The generated C verify() compiles for record, as [(name, text)]."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher
    link_object = object_file(layout, record.link_sha256)
    return [("trial", dispatcher.trial_source(family, record, function, hook, link_object))
            for function, family, hook, how in _trials(layout, record) if how == "trial"]


def verify(toolchain, layout, record):
    """Load each hookable function (and entry program) of a built, not yet
    stored plugin once, in a throwaway program with fresh maps, so a verifier
    refusal fails the install, naming plugin, function and source line, and
    not a later dispatcher. Nothing is pinned, recorded or attached.
    toolchain: a generated.Builder. A host that does not compile gets the
    verification programs from the controller: the caller asks for them all
    first (trial_sources, with the rest of its change: Engine.ensure_plugin)."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher, libbpf
    link_object = object_file(layout, record.link_sha256)
    plain_object = object_file(layout, record.plain_sha256)
    for function, family, hook, how in _trials(layout, record):
        try:
            if how == "program":
                # Not callable from a linked program: load the program itself.
                dispatcher.load_trial(plain_object, keep=function, family=family, record=record)
            else:
                trial = dispatcher.prepare_trial(toolchain, layout, family, record, function, hook, link_object)
                dispatcher.load_trial(trial, record=record)
        except libbpf.BpfError as exc:
            raise PluginError("plugin '%s': the kernel's verifier refuses function '%s'%s; nothing was installed"
                              % (record.name, function, verifier_reason(exc.log or str(exc))), log=exc.log or "")


_SOURCE_LINE = re.compile(r"^; (.*) @ (\S+:\d+)$")


_INSN_LINE = re.compile(r"^\d+: ")


def verifier_reason(log):
    """' at file.c:LINE (`source`): reason' from a verifier log: the last
    source line the verifier reached and the message that follows it."""
    where, reason = "", ""
    lines = log.splitlines()
    for n, line in enumerate(lines):
        match = _SOURCE_LINE.match(line.strip())
        if match:
            where = " at %s (`%s`)" % (match.group(2), match.group(1).strip())
            reason = ""
            for after in lines[n + 1:]:
                after = after.strip()
                if after and not _INSN_LINE.match(after) and not after.startswith(";"):
                    reason = after
                    break
    if not reason:
        text = [line.strip() for line in lines if line.strip()]
        reason = next((line for line in reversed(text) if not line.startswith("libbpf:")), text[-1] if text else "")
    return "%s: %s" % (where, reason) if reason else where


def pin_maps(layout, record):
    """Store the plugin's objects, create its maps (or reuse the pinned ones) and
    pin them by their declared names. Returns True when a map was created.

    On failure everything this call added is taken away again: pins,
    directories and stored objects."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object, libbpf
    added = store_objects(layout, record)
    maps_dir = layout.plugin_maps_dir(record.name)
    before = set(os.listdir(maps_dir)) if os.path.isdir(maps_dir) else None
    try:
        layout.ensure_bpffs_dir(maps_dir)
        # pin_root_path: maps declared pinned by name land in the plugin's own
        # directory, never in libbpf's default /sys/fs/bpf.
        obj = bpf_object.BpfObject.open_file(layout.object_path(record.plain_sha256), name=record.name,
                                             pin_root_path=maps_dir)
        try:
            for prog in obj.programs():
                prog.set_autoload(False)  # only the maps are wanted here ...
            # ... and the tail-call targets, which fill the plugin's prog
            # arrays before they are pinned (the pins keep them loaded).
            prepare_plugin_code(obj, [record], linked=False)
            for bpf_map in obj.maps():
                if not bpf_map.is_internal:
                    bpf_map.set_pin_path(layout.plugin_map_pin(record.name, bpf_map.name))
            try:
                obj.load()
            except libbpf.BpfError as exc:
                if "initialize slot" in (exc.log or ""):
                    raise PluginError(
                        "plugin '%s': a tail-call target of its prog array could not be loaded: %s"
                        % (record.name, exc), log=exc.log or "")
                raise PluginError(
                    "the maps of plugin '%s' cannot be created or reused: %s. If a map's definition "
                    "changed, remove the plugin (state: absent, force: true) to drop its old maps"
                    % (record.name, exc), log=exc.log or "")
        finally:
            obj.close()
    except BaseException:
        _undo_pin(layout, maps_dir, before, added)
        raise
    return set(os.listdir(maps_dir)) != (before or set())


def _undo_pin(layout, maps_dir, before, added):
    if os.path.isdir(maps_dir):
        for entry in set(os.listdir(maps_dir)) - (before or set()):
            os.unlink(os.path.join(maps_dir, entry))
        if before is None:
            remove_empty_dirs(maps_dir, layout.bpffs_root)
    for path in added:
        os.unlink(path)
