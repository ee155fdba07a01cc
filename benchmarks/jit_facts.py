# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Why a plugin call costs what it costs here: the facts behind the packet-path numbers.

* the JIT and statistics sysctls, and the CPU vulnerability mitigations in force;
* the machine code the JIT made for a link-mode dispatcher with one no-op plugin
  and for one tail-call hop, disassembled with objdump, every call/jump target
  named from /proc/kallsyms (which shows the return thunk and retpoline the
  mitigations add);
* benchmarks/native/retcost.c: what a plain call/return and a plain indirect
  jump cost on this CPU against the same code shapes as those thunks.
"""

import ctypes
import os
import re
import subprocess
import tempfile

from common import BPF_DIR, libbpf, log, remove_bpffs_tree
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

SYSCTLS = ("net/core/bpf_jit_enable", "net/core/bpf_jit_harden", "net/core/bpf_jit_kallsyms",
           "kernel/bpf_stats_enabled")
VULNERABILITIES = ("spectre_v2", "spec_rstack_overflow", "retbleed", "spectre_v1")


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def jited_functions(fd):
    """[(address, bytes)] of every JITed function of a program (main first)."""
    info = libbpf._get_info(fd, libbpf._ProgInfo())  # the struct the collection already declares
    size, nsyms, nlens = info.jited_prog_len, info.nr_jited_ksyms, info.nr_jited_func_lens
    image = (ctypes.c_uint8 * size)()
    addrs = (ctypes.c_uint64 * max(nsyms, 1))()
    lens = (ctypes.c_uint32 * max(nlens, 1))()
    again = libbpf._ProgInfo(jited_prog_len=size, jited_prog_insns=ctypes.addressof(image),
                             nr_jited_ksyms=nsyms, jited_ksyms=ctypes.addressof(addrs),
                             nr_jited_func_lens=nlens, jited_func_lens=ctypes.addressof(lens))
    libbpf._get_info(fd, again)
    raw, out, off = bytes(image), [], 0
    if not nsyms:
        return [(0, raw)]
    for addr, length in zip(addrs[:nsyms], lens[:nlens]):
        out.append((addr, raw[off:off + length]))
        off += length
    return out


def kernel_symbols():
    symbols = {}
    with open("/proc/kallsyms") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 3:
                addr = int(fields[0], 16)
                # one address, several names: __pi_ aliases are the least telling
                if addr not in symbols or symbols[addr].startswith("__pi_"):
                    symbols[addr] = fields[2]
    return symbols


def disassemble(fd):
    """objdump -D of each JITed function, call/jmp targets named. [[lines], ...]"""
    symbols = kernel_symbols()  # now: the program's own functions are listed once loaded
    functions = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f.bin")
        for addr, code in jited_functions(fd):
            with open(path, "wb") as handle:
                handle.write(code)
            proc = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64", "--adjust-vma=%#x" % addr, path],
                                  capture_output=True, text=True, check=True, timeout=60)
            lines = []
            for line in proc.stdout.splitlines():
                match = re.match(r"\s*([0-9a-f]+):\t(?:[0-9a-f]{2} )+\s*\t(.*)$", line)
                if not match:
                    continue
                text = re.sub(r"\s+", " ", match.group(2)).strip()
                target = re.search(r"(?:call|jmp)\s+0x([0-9a-f]+)$", text)
                if target and int(target.group(1), 16) in symbols:
                    text += " <%s>" % symbols[int(target.group(1), 16)]
                lines.append(text)
            functions.append(lines)
    return functions


def thunks(functions):
    """The kernel symbols the code jumps or calls into (not its own functions)."""
    found = set()
    for lines in functions:
        for line in lines:
            match = re.search(r"<([^>]+)>$", line)
            if match and not match.group(1).startswith("bpf_prog_"):
                found.add(match.group(1))
    return sorted(found)


def native_costs(scratch):
    try:
        proc = subprocess.run([scratch.native("retcost")], capture_output=True, text=True, timeout=120, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": str(exc)}
    return dict((name, float(value)) for name, value in (line.split() for line in proc.stdout.splitlines()))


def collect(scratch):
    out = {"sysctl": dict((name, _read("/proc/sys/" + name)) for name in SYSCTLS),
           "vulnerabilities": dict((name, _read("/sys/devices/system/cpu/vulnerabilities/" + name))
                                   for name in VULNERABILITIES)}
    tc = Toolchain(scratch.cache, run_subprocess)
    with scratch.engine("jit") as eng:
        eng.ensure_plugin("noop", src=os.path.join(BPF_DIR, "noop.c"))
        chain = {"pre": [["noop", "noop"]], "post": []}
        built = disp_mod.build_link(eng.toolchain, eng.layout, "jit", "tc", chain, None, eng.registry.plugins,
                                    eng.layout.generation_prog_pin("jit", 1))
        try:
            out["link_1_plugin_jited"] = disassemble(built.fd)
        finally:
            built.close()
            remove_bpffs_tree(eng.layout.dispatcher_dir("jit"))
            eng.remove_plugin("noop")
    tail = bpf_object.BpfObject.open_file(tc.compile(os.path.join(BPF_DIR, "tailcall.c")).object_path)
    try:
        tail.load()
        out["tailcall_hop_jited"] = disassemble(tail.program("hop").fd)
    finally:
        tail.close()
    out["thunks_link"] = thunks(out["link_1_plugin_jited"])
    out["thunks_tailcall"] = thunks(out["tailcall_hop_jited"])
    out["native_ns"] = native_costs(scratch)
    log("JIT: %s; mitigations: %s; link-mode code jumps to %s, a tail call to %s; native: %s"
        % (", ".join("%s=%s" % (k.split("/")[-1], v) for k, v in out["sysctl"].items()),
           "; ".join("%s: %s" % kv for kv in out["vulnerabilities"].items() if kv[1]),
           ", ".join(out["thunks_link"]) or "nothing", ", ".join(out["thunks_tailcall"]) or "nothing",
           ", ".join("%s %.1f ns" % kv for kv in sorted(out["native_ns"].items()) if isinstance(kv[1], float))))
    return out
