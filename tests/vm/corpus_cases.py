# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The corpus programs (tests/corpus/, see its README) as chains: each one
unmodified as a dispatcher's main, counter.c's count as the pre hook and
verdicts.c's record as the post hook, and how to read what each program
counted itself.

Shared by the host tier (tests/integration/test_real_programs_corpus.py: link
mode here, and the freplace objects the VM loads, built here so that the VM's
compile cache has them) and the VM tier (tests/vm/test_corpus_freplace.py:
freplace mode in Debian's stock kernel). The CO-RE classifier includes a
vmlinux.h generated from the BTF of the kernel it runs on, kept at a fixed
path per kernel release (vmlinux_dir): the compile cache is keyed by flags
(include directories) and header contents, so the header the host generates
from the stock kernel's image and the one the VM generates from its running
kernel give the same key.
"""

import collections
import glob
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib

from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "corpus")
TESTDATA = os.path.join(ROOT, "bpf", "testdata")
VMLINUX = "<vmlinux.h>"  # an include_dirs entry: the generated vmlinux.h's directory

Case = collections.namedtuple("Case", "plugin src include_dirs attach main drops")

CASES = (
    Case("cls", "tc_core/classifier.c", (VMLINUX,), "tc_ingress", "classify_udp", True),
    Case("filter", "xdp_shared/xdp_port_filter.c", (), "xdp", "xdp_port_filter_func", True),
    Case("passall", "xdp_shared/xdp_pass_all.c", (), "xdp", "xdp_pass_func", False),
    Case("cil", "cilium_style/bpf_policy.c", ("cilium_style/include",), "tc_ingress", "cil_policy_ingress", True),
    Case("stages", "tail_calls/tc_stages.c", (), "tc_ingress", "tc_classify", True),
)
BY_PLUGIN = dict((c.plugin, c) for c in CASES)
HOOK_PLUGINS = (("counter", "counter.c"), ("verdicts", "verdicts.c"))

# What the tests send: DROPPED datagrams to the port every program denies
# (modhost.DROP_PORT, 7777), PASSED to an open one.
DROPPED, PASSED = 4, 3


def verdicts(attach):
    """(drop, pass) verdict numbers of the family: the post hook's `seen` slots."""
    return (1, 2) if attach == "xdp" else (2, 0)  # XDP_DROP, XDP_PASS / TC_ACT_SHOT, TC_ACT_OK


def hooks(attach):
    """The chain around every corpus main: a pre hook that counts, a post hook
    that counts the verdicts it is handed."""
    xdp = attach == "xdp"
    return [{"plugin": "counter", "function": "count_xdp" if xdp else "count", "hook": "pre", "priority": 50,
             "constraints": []},
            {"plugin": "verdicts", "function": "record_xdp" if xdp else "record", "hook": "post", "priority": 50,
             "constraints": []}]


def main_ref(case):
    return {"plugin": case.plugin, "function": case.main}


def include_dirs(case, vmlinux):
    return [vmlinux if d == VMLINUX else os.path.join(CORPUS, d) for d in case.include_dirs]


def install(eng, case, vmlinux=None):
    """Install one corpus program and the two hook plugins with an Engine."""
    for name, src in HOOK_PLUGINS:
        eng.ensure_plugin(name, src=os.path.join(TESTDATA, src))
    eng.ensure_plugin(case.plugin, src=os.path.join(CORPUS, case.src), include_dirs=include_dirs(case, vmlinux))


def expected(case):
    """What one burst must show: (received at the open and the denied port),
    (pre hook count, post hook's drops, post hook's passes), the program's own
    counts (own_counts)."""
    drops = DROPPED if case.drops else 0
    received = (DROPPED - drops, PASSED)
    seen = (DROPPED + PASSED, drops, DROPPED + PASSED - drops)
    own = {"cls": {"shot": drops, "ok": PASSED},
           "filter": {"drop": drops, "pass": PASSED},
           "passall": {"pass": DROPPED + PASSED},
           "cil": {"denied": drops, "forwarded": PASSED},
           "stages": {"deny_stage": drops, "accept_stage": PASSED, "no_tail_call": 0}}[case.plugin]
    return received, seen, own


def _map(bpffs_root, plugin, name):
    return read_pinned(os.path.join(bpffs_root, "plugins", plugin, "maps", name))


def _struct_field(value, index):
    """A __u64 field of a struct value read_pinned gave as hex (or a list of
    hex strings, one per CPU: summed)."""
    values = value if isinstance(value, list) else [value]
    return sum(struct.unpack_from("<Q", bytes.fromhex(v), 8 * index)[0] for v in values)


def own_counts(bpffs_root, case):
    """The counts the corpus program keeps in its own maps (see expected)."""
    if case.plugin == "cls":
        counts = _map(bpffs_root, "cls", "verdict_counts")
        return {"shot": counts.get(2, 0), "ok": counts.get(0, 0)}
    if case.plugin in ("filter", "passall"):
        stats = _map(bpffs_root, case.plugin, "xdp_stats_map")  # struct datarec {rx_packets, rx_bytes}
        out = {"drop": _struct_field(stats[1], 0) if 1 in stats else 0,
               "pass": _struct_field(stats[2], 0) if 2 in stats else 0}
        return out if case.plugin == "filter" else {"pass": out["pass"]}
    if case.plugin == "cil":
        # struct metrics_key {u8 reason; u8 dir; u16 pad} read as an integer,
        # per-CPU struct metrics_value {count, bytes}. Ingress is dir 1.
        metrics = _map(bpffs_root, "cil", "node_metrics")
        return {"denied": _struct_field(metrics[133 | 1 << 8], 0) if 133 | 1 << 8 in metrics else 0,
                "forwarded": _struct_field(metrics[0 | 1 << 8], 0) if 0 | 1 << 8 in metrics else 0}
    hits = _map(bpffs_root, "stages", "stage_hits")  # slot: 0 deny stage, 1 accept stage, 2 no tail call
    return {"deny_stage": hits.get(0, 0), "accept_stage": hits.get(1, 0), "no_tail_call": hits.get(2, 0)}


# vmlinux.h ---------------------------------------------------------------

def vmlinux_dir(release):
    """Where the vmlinux.h of a kernel release is kept (fixed: part of the compile cache's key)."""
    return os.path.join(ROOT, "build", "corpus", "vmlinux-" + release)


def write_vmlinux_h(btf_file, release):
    """vmlinux.h of release generated by bpftool from btf_file (raw BTF, as in
    /sys/kernel/btf/vmlinux, or an ELF with a .BTF section); its directory."""
    out = vmlinux_dir(release)
    os.makedirs(out, exist_ok=True)
    text = subprocess.run(["bpftool", "btf", "dump", "file", btf_file, "format", "c"],
                          capture_output=True, check=True, timeout=300).stdout
    path = os.path.join(out, "vmlinux.h")
    tmp = path + ".tmp-%d" % os.getpid()
    with open(tmp, "wb") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return out


def _version_key(release):
    return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", release)]


def stock_kernel():
    """(image path, release) of the kernel tests/vm/run-in-vm boots: VM_KERNEL,
    else the newest /boot/vmlinuz-* that is not the running kernel and has modules."""
    if os.environ.get("VM_KERNEL"):
        path = os.path.abspath(os.environ["VM_KERNEL"])
        return path, os.path.basename(path).replace("vmlinuz-", "", 1)
    found = []
    for path in glob.glob("/boot/vmlinuz-*"):
        release = os.path.basename(path)[len("vmlinuz-"):]
        if release != os.uname().release and os.path.isdir("/lib/modules/" + release):
            found.append((_version_key(release), release, path))
    if not found:
        raise RuntimeError("no stock kernel in /boot with modules in /lib/modules")
    _key, release, path = max(found)
    return path, release


# Compressed payloads a bzImage may carry, by magic; the first that
# decompresses to an ELF image is the kernel (its .BTF section is what the
# running kernel shows as /sys/kernel/btf/vmlinux).
_PAYLOADS = ((b"\xfd7zXZ\x00", lambda data: lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data)),
             (b"\x1f\x8b\x08", lambda data: zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)))


def extract_elf(image, dest):
    """Write the uncompressed ELF kernel inside bzImage `image` to dest."""
    with open(image, "rb") as handle:
        data = handle.read()
    for magic, decompress in _PAYLOADS:
        at = data.find(magic)
        while at >= 0:
            try:
                elf = decompress(data[at:])
            except (lzma.LZMAError, zlib.error, EOFError):
                elf = b""
            if elf.startswith(b"\x7fELF"):
                with open(dest, "wb") as out:
                    out.write(elf)
                return dest
            at = data.find(magic, at + 1)
    raise RuntimeError("%s: no xz or gzip payload holding an ELF kernel (another compression: "
                       "generate vmlinux.h inside the VM instead)" % image)


def stock_kernel_vmlinux_dir():
    """vmlinux.h of the VM's kernel generated here, from the .BTF section of
    its image: the same bytes the VM's /sys/kernel/btf/vmlinux holds."""
    image, release = stock_kernel()
    scratch = tempfile.mkdtemp(prefix="corpus-vmlinux-")
    try:
        return write_vmlinux_h(extract_elf(image, os.path.join(scratch, "vmlinux")), release)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
