# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""object_info.reaches_cb4 on llvm-readobj's JSON description of an object,
written here instruction by instruction (struct bpf_insn: opcode, dst:4
src:4, s16 offset, s32 immediate). The same scan of objects clang compiled is
in tests/integration/test_inline_objects.py."""

import struct

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils.object_info import reaches_cb4

LDX_W, LDX_H, LDX_DW, STX_W, ST_W, CALL, EXIT, MOV64_IMM = 0x61, 0x69, 0x79, 0x63, 0x62, 0x85, 0x95, 0xb7


def insn(opcode, dst=0, src=0, off=0, imm=0, little=True):
    regs = (src << 4 | dst) if little else (dst << 4 | src)
    return struct.pack("<BBhi" if little else ">BBhi", opcode, regs, off, imm)


def readobj(code, section="tc", other=None, little=True, relocs=(), undefined=()):
    """llvm-readobj --elf-output-style=JSON of an object with one code section
    (index 2) holding code, a data section (index 3) holding other."""
    def section_entry(index, name, flags, data):
        return {"Section": {"Index": index, "Name": {"Name": name}, "Type": {"Name": "SHT_PROGBITS"},
                            "Flags": {"Flags": [{"Name": f} for f in flags]}, "Info": 0,
                            "SectionData": {"Bytes": list(data)}}}
    sections = [section_entry(2, section, ["SHF_ALLOC", "SHF_EXECINSTR"], code),
                section_entry(3, ".data", ["SHF_ALLOC", "SHF_WRITE"], other or b"")]
    sections.append({"Section": {"Index": 4, "Name": {"Name": ".rel" + section}, "Type": {"Name": "SHT_REL"},
                                 "Flags": {"Flags": []}, "Info": 2, "SectionData": {"Bytes": []}}})
    symbols = [{"Symbol": {"Name": {"Name": name}, "Section": {"Name": "Undefined"}}} for name in undefined]
    symbols.append({"Symbol": {"Name": {"Name": "f"}, "Section": {"Name": section}}})
    return [{"FileSummary": {"Arch": "bpfel" if little else "bpfeb"}, "Sections": sections, "Symbols": symbols,
             "Relocations": [{"SectionIndex": 4, "Relocs": [
                 {"Relocation": {"Offset": off, "Symbol": {"Name": name}}} for off, name in relocs]}]}]


EXIT_0 = insn(MOV64_IMM, dst=0) + insn(EXIT)


@pytest.mark.parametrize("code,expected", [
    (insn(LDX_W, dst=2, src=1, off=64) + EXIT_0, True),  # r2 = ctx->cb[4]
    (insn(LDX_H, dst=2, src=1, off=66) + EXIT_0, True),  # a narrowed read of it
    (insn(LDX_DW, dst=2, src=1, off=60) + EXIT_0, True),  # u64 over cb[3] and cb[4]
    (insn(STX_W, dst=1, src=2, off=64) + EXIT_0, True),  # ctx->cb[4] = r2
    (insn(ST_W, dst=1, off=64, imm=7) + EXIT_0, True),
    (insn(LDX_W, dst=2, src=1, off=60) + insn(LDX_W, dst=3, src=1, off=68) + EXIT_0, False),  # cb[3], cb[5]
    (insn(LDX_DW, dst=2, src=1, off=56) + EXIT_0, False),  # bytes 56..63
    (insn(CALL, imm=1) + EXIT_0, False),  # bpf_map_lookup_elem
    (insn(CALL, imm=12) + EXIT_0, True),  # bpf_tail_call
    (insn(CALL, imm=113) + EXIT_0, True),  # bpf_probe_read_kernel
    (insn(CALL, src=1, imm=2) + EXIT_0 + insn(MOV64_IMM, dst=0) + insn(EXIT), False),  # a call of a subprogram
    (insn(CALL, src=2, imm=1234) + EXIT_0, True),  # a kfunc as a loaded program has it
])
def test_code_that_reaches_cb4(code, expected):
    assert reaches_cb4(readobj(code)) is expected
    assert reaches_cb4(readobj(b"".join(insn(c[0], c[1] & 0xf, c[1] >> 4, *struct.unpack("<hi", c[2:]),
                                             little=False) for c in [code[i:i + 8] for i in range(0, len(code), 8)]),
                               little=False)) is expected, "big-endian"


def test_a_call_relocated_against_an_undefined_symbol_is_a_kfunc():
    code = insn(CALL, imm=-1) + EXIT_0
    assert reaches_cb4(readobj(code, relocs=[(0, "bpf_cast_to_kern_ctx")], undefined=["bpf_cast_to_kern_ctx"]))
    assert not reaches_cb4(readobj(code, relocs=[(0, "f")])), "a call relocated against a function of the object"


def test_only_code_sections_are_read():
    data = insn(LDX_W, dst=2, src=1, off=64)  # looks like a cb[4] read, but is data
    assert not reaches_cb4(readobj(EXIT_0, other=data))
    assert reaches_cb4(readobj(data + EXIT_0, section=".text"))
