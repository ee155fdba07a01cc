# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a plugin object holds, read with libbpf: its global functions with
their parameter types, its maps, the global symbols that would collide when
linked with another plugin, its entry programs (functions under SEC("tc"),
SEC("xdp") ...) and its prog arrays.

It depends only on the object's bytes, so plugin_store remembers it in the
compile cache by sha256: a rerun with the same object reads that record and
does not open the object (nor import libbpf)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf, bpf_object, libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError

# Global variables the static linker merges by design and we must not rename.
_KEEP_SECTIONS = ("license", "version")

# A family's program type, for a program whose section libbpf 1.1 does not know (tcx/...).
PROG_TYPES = {"tc": libbpf.BPF_PROG_TYPE_SCHED_CLS, "cilium": libbpf.BPF_PROG_TYPE_SCHED_CLS,
              "xdp": libbpf.BPF_PROG_TYPE_XDP}

# libbpf's program type of a section -> the dispatcher family whose context it takes.
_ENTRY_FAMILIES = {libbpf.BPF_PROG_TYPE_SCHED_CLS: "tc", libbpf.BPF_PROG_TYPE_SCHED_ACT: "tc",
                   libbpf.BPF_PROG_TYPE_XDP: "xdp"}
# Sections newer than the host's libbpf (libbpf 1.1 knows no "tcx/", "netkit/"):
# their family by the section's first word.
_ENTRY_SECTION_FAMILIES = {"tcx": "tc", "netkit": "tc", "tc": "tc", "classifier": "tc", "xdp": "xdp"}


class ObjectError(DatapathError):
    """The object cannot be read as a plugin; the message says why."""


def inspect_object(path):
    """Read a BPF object's BTF: global functions with their parameter types, maps,
    and the global symbols that would collide when linked with another plugin."""
    try:
        btf = bpf_btf.Btf.from_elf(path)
    except libbpf.BpfError as exc:
        raise ObjectError("%s has no usable BTF (compile with -g): %s" % (path, exc))
    with btf:
        functions = {}
        for func in btf.functions():
            if func.linkage == "global":
                functions[func.name] = {"params": [t for _param, t in func.params], "ret": func.ret_type_name}
        global_vars = []
        maps = []
        for var in btf.variables():
            if var.section == ".maps":
                maps.append(var.name)
            if var.linkage == "global" and var.section not in _KEEP_SECTIONS:
                global_vars.append(var.name)
    return {"functions": functions, "maps": sorted(maps), "globals": sorted(set(global_vars) | set(functions))}


def describe(path):
    """inspect_object() with "entries" (entry_programs()) and "prog_arrays"
    (the names of its BPF_MAP_TYPE_PROG_ARRAY maps), as plain JSON data."""
    info = inspect_object(path)
    info["entries"], info["prog_arrays"] = _programs_and_prog_arrays(path, info)
    return info


def _entry_family(prog):
    family = _ENTRY_FAMILIES.get(prog.type)
    if family is None and prog.type == libbpf.BPF_PROG_TYPE_UNSPEC:
        family = _ENTRY_SECTION_FAMILIES.get(prog.section.split("/")[0].split(".")[0])
    return family


def entry_programs(path, info):
    """The global functions of an object that are programs of their own (under
    SEC("tc"), SEC("xdp") ...): {function: {"section", "family"}}."""
    return _programs_and_prog_arrays(path, info)[0]


def _programs_and_prog_arrays(path, info):
    """(entry programs as entry_programs() says, the maps of type
    BPF_MAP_TYPE_PROG_ARRAY): libbpf reads sections and map definitions (open
    only: nothing is created or pinned). A lone .text function is listed by
    libbpf as a program too; it is a hook function."""
    try:
        obj = bpf_object.BpfObject.open_file(path, name="inspect")
    except libbpf.BpfError as exc:
        raise ObjectError("libbpf cannot open %s: %s" % (path, exc), log=exc.log or "")
    try:
        entries = dict((prog.name, {"section": prog.section, "family": _entry_family(prog)})
                       for prog in obj.programs() if prog.name in info["functions"] and prog.section != ".text")
        arrays = sorted(m.name for m in obj.maps() if not m.is_internal and m.type == libbpf.BPF_MAP_TYPE_PROG_ARRAY)
        return entries, arrays
    finally:
        obj.close()
