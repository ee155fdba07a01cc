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


# ---------------------------------------------------------------------------
# Does the object's code reach skb->cb[4]?
#
# The tc dispatcher saves cb[4] (DP_CB_CILIUM_CUSTOM), zeroes it for the chain
# (dp_remote_identity() reads 0 outside Cilium) and restores it on exit. Where
# no code of the chain can reach that word, the three steps change nothing
# anyone sees, and an inline chain leaves them out (inline_build.py).

_CB4 = (64, 68)  # its bytes in struct __sk_buff
# Helpers that reach it other than by a ctx access: bpf_tail_call (12: the
# program entered runs with the chain's cb[4], and the restore never runs), and
# the probe_read family (4, 45, 112-115: any kernel address, the sk_buff's too).
_CB4_HELPERS = frozenset((4, 12, 45, 112, 113, 114, 115))
_BPF_CALL = 0x85  # BPF_JMP | BPF_CALL
_BPF_PSEUDO_CALL = 1  # a call of a function of the same object, which is scanned too
_MEMORY_CLASSES = (0x01, 0x02, 0x03)  # BPF_LDX, BPF_ST, BPF_STX
_SIZES = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}  # BPF_W, BPF_H, BPF_B, BPF_DW


def reaches_cb4(readobj):
    """Whether the code of an object may read or write skb->cb[4]: True unless
    every instruction of every code section (.text included) is shown not to.
    readobj: ``llvm-readobj --elf-output-style=JSON --sections --section-data
    --symbols --relocations`` of the object, parsed (LLVM reads the ELF).

    The verifier takes a ctx field only at a constant offset from the ctx
    pointer as it was passed ("dereference of modified ctx ptr" otherwise), so
    code reaches cb[4] by a load or store whose bytes overlap [64, 68) (of any
    base register: a packet or map access there counts too, which only keeps
    the handling), by a helper of _CB4_HELPERS, or by a call of an extern
    function (a kfunc: bpf_cast_to_kern_ctx gives the kernel's sk_buff)."""
    doc = readobj[0] if isinstance(readobj, list) else readobj
    little = doc["FileSummary"].get("Arch", "bpfel") != "bpfeb"
    sections = [entry["Section"] for entry in doc["Sections"]]
    undefined = set(entry["Symbol"]["Name"]["Name"] for entry in doc.get("Symbols", [])
                    if entry["Symbol"]["Section"]["Name"] == "Undefined")
    by_index = dict((s["Index"], s) for s in sections)
    extern_calls = {}  # code section index -> offsets relocated against an undefined symbol
    for group in doc.get("Relocations", []):
        target = by_index[group["SectionIndex"]]["Info"]
        for entry in group["Relocs"]:
            reloc = entry["Relocation"]
            if reloc["Symbol"]["Name"] in undefined:
                extern_calls.setdefault(target, set()).add(reloc["Offset"])
    for section in sections:
        if section["Type"]["Name"] != "SHT_PROGBITS" or not any(
                flag["Name"] == "SHF_EXECINSTR" for flag in section["Flags"]["Flags"]):
            continue
        if _code_reaches_cb4(bytes(section["SectionData"]["Bytes"]), little,
                             extern_calls.get(section["Index"], set())):
            return True
    return False


def _code_reaches_cb4(code, little, extern_calls):
    """reaches_cb4 for one code section: struct bpf_insn is 8 bytes, opcode,
    dst:4 src:4 registers, s16 offset, s32 immediate."""
    for pos in range(0, len(code) - 7, 8):
        opcode, regs = code[pos], code[pos + 1]
        off = int.from_bytes(code[pos + 2:pos + 4], "little" if little else "big", signed=True)
        imm = int.from_bytes(code[pos + 4:pos + 8], "little" if little else "big", signed=True)
        if opcode & 0x07 in _MEMORY_CLASSES:
            size = _SIZES[opcode & 0x18]
            if off < _CB4[1] and off + size > _CB4[0]:
                return True
        elif opcode == _BPF_CALL:
            src = regs >> 4 if little else regs & 0x0f
            if pos in extern_calls or src not in (0, _BPF_PSEUDO_CALL):
                return True  # a kfunc, or a call of a kind not known here
            if src == 0 and imm in _CB4_HELPERS:
                return True
    return False
