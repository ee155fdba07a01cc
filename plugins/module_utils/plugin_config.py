# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A plugin's settings (datapath_plugin's ``config``): its global variables in
.rodata (``const volatile``), .data and .bss, set before load as libbpf's
skeletons set them.

Two steps, as for map data:

- **encode** (at install, no kernel): each name must be a global variable of
  the plugin's plain object; its value is turned into bytes by the variable's
  BTF type with the encodings of datapath_map (integers, booleans, enums by
  name, byte arrays, IPv4/IPv6/MAC as text, structs as dicts). Anything else is
  refused naming the variable and its type. The result is recorded with the
  plugin (``Plugin.config_data``: variable -> hex), so every later load needs
  no type information.
- **apply** (every load of the plugin's code: the linked dispatcher, the
  freplace extensions, the install's trials, the plain object whose tail-call
  targets run): the bytes are written at the variable's offset in the
  object's internal map, found by name in the opened object's BTF.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii

from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf, bpf_object, libbpf, map_data
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.naming import plugin_symbol

# Sections whose globals are settings: libbpf makes each an internal map whose
# initial value the loader may write before load.
_DATA_SECTIONS = (".rodata", ".data", ".bss")


class ConfigError(DatapathError):
    """A setting that names no variable of the plugin or does not fit its type."""


def _is_data_section(section):
    return any(section == s or section.startswith(s + ".") for s in _DATA_SECTIONS)


def encode(plugin, object_path, config):
    """{variable: hex} of config ({name: YAML value}) for the plugin whose
    plain object is object_path. Raises ConfigError naming the variable."""
    if not config:
        return {}
    try:
        btf = bpf_btf.Btf.from_elf(object_path)
    except libbpf.BpfError as exc:
        raise ConfigError("plugin '%s': its object has no usable BTF for config: %s" % (plugin, exc))
    with btf:
        data_vars = [v for v in bpf_btf.datasec_vars(btf) if _is_data_section(v.section)]
        found = dict((v.name, v) for v in data_vars if v.linkage == "global")
        statics = set(v.name for v in data_vars if v.linkage == "static")
        out = {}
        for name in sorted(config):
            var = found.get(name)
            if var is None:
                if name in statics:
                    why = "it is static; declare it without 'static' to set it from config"
                else:
                    why = "settable are the global variables of .rodata (const volatile), .data and .bss: %s" % (
                        ", ".join(sorted(found)) or "none")
                raise ConfigError("plugin '%s': config '%s' is no variable of the plugin; %s" % (plugin, name, why))
            ctype = map_data.from_btf(btf, var.type_id, bpf_btf)
            try:
                data = ctype.encode(config[name], "config '%s'" % name)
            except map_data.MapDataError as exc:
                raise ConfigError("plugin '%s': %s" % (plugin, exc))
            out[name] = binascii.hexlify(data).decode("ascii")
        return out


def symbols(record, linked):
    """[(symbol, bytes)] of a plugin's recorded settings, named as in a linked
    object (namespaced for a source plugin) or in its plain object."""
    out = []
    for name, hexdata in sorted(record.config_data.items()):
        symbol = plugin_symbol(record.name, name) if linked and "src" in record.source else name
        out.append((symbol, binascii.unhexlify(hexdata)))
    return out


def apply(obj, values):
    """Write [(symbol, bytes)] into the opened (not yet loaded) BpfObject's
    internal maps. Raises ConfigError for a symbol the object lacks."""
    if not values:
        return
    btf = bpf_btf.object_btf(obj)
    where = {}
    for var in (bpf_btf.datasec_vars(btf) if btf is not None else []):
        if _is_data_section(var.section):
            where[var.name] = var
    for symbol, data in values:
        var = where.get(symbol)
        if var is None:
            raise ConfigError("object %s has no variable '%s' to set" % (obj.name, symbol))
        if len(data) != var.size:
            raise ConfigError("variable '%s' has %d bytes, config gives %d" % (symbol, var.size, len(data)))
        try:
            bpf_map = obj.map(var.section)
        except KeyError:
            raise ConfigError("object %s has no map for section %s" % (obj.name, var.section))
        bpf_object.write_initial_value(bpf_map, var.offset, data)
