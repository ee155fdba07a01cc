# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every benchmark section shares: import paths, logging, the scratch area
of one run, the test packet, timing with BPF_PROG_TEST_RUN, a least-squares fit,
and building the small native (host) helper programs in benchmarks/native."""

import contextlib
import os
import platform
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BPF_DIR = os.path.join(HERE, "bpf")
NATIVE_DIR = os.path.join(HERE, "native")
RESULTS = os.path.join(HERE, "results")

TC_ACT_OK = 0


def _collection_link():
    """build/ansible_collections/ebpf/datapath -> the work tree, as `make links` does."""
    parent = os.path.join(ROOT, "build", "ansible_collections", "ebpf")
    link = os.path.join(parent, "datapath")
    if not os.path.exists(link):
        os.makedirs(parent, exist_ok=True)
        try:
            os.symlink("../../..", link)
        except FileExistsError:
            pass


_collection_link()
for _p in (os.path.join(ROOT, "build"), os.path.join(ROOT, "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils.state import remove_bpffs_tree  # noqa: E402


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def udp_packet(payload_len=64):
    """Ethernet/IPv4/UDP, 10.0.0.1:40000 -> 10.0.0.2:8888, valid IPv4 checksum."""
    payload = bytes(i & 0xff for i in range(payload_len))
    udp = struct.pack("!HHHH", 40000, 8888, 8 + payload_len, 0) + payload
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, socket.IPPROTO_UDP, 0,
                               socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")))
    total = sum(struct.unpack("!10H", bytes(ip)))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    ip[10:12] = struct.pack("!H", ~total & 0xffff)
    eth = bytes.fromhex("020000000002020000000001" + "0800")  # dst, src MAC; IPv4
    return eth + bytes(ip) + udp


def fit_slope(xs, ys):
    """Least-squares slope and intercept of ys over xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def time_prog(fd, pkt, repeat, runs, expect=TC_ACT_OK):
    """Median (and all) of `runs` test runs, each averaged by the kernel over `repeat`."""
    first = libbpf.prog_test_run(fd, pkt, repeat=1000)  # warm the caches
    if first.retval != expect:
        raise RuntimeError("program returned %d, expected %d: not the path we meant to time" % (first.retval, expect))
    samples = [libbpf.prog_test_run(fd, pkt, repeat=repeat).duration_ns for _run in range(runs)]
    return {"median_ns": statistics.median(samples), "min_ns": min(samples), "samples_ns": samples}


def paired(fd_a, fd_b, pkt, repeat, runs, flip=False):
    """Runs of a and b alternated, so drift on a shared machine hits both alike:
    the median of the per-pair differences b - a and of the ratios b / a.
    flip: every other pair runs b first, so that running second (warmer
    caches, a later moment) favours neither."""
    a, b = [], []
    for run in range(runs):
        if flip and run % 2:
            b.append(libbpf.prog_test_run(fd_b, pkt, repeat=repeat).duration_ns)
            a.append(libbpf.prog_test_run(fd_a, pkt, repeat=repeat).duration_ns)
        else:
            a.append(libbpf.prog_test_run(fd_a, pkt, repeat=repeat).duration_ns)
            b.append(libbpf.prog_test_run(fd_b, pkt, repeat=repeat).duration_ns)
    return {"diff_median_ns": statistics.median(y - x for x, y in zip(a, b)),
            "ratio_median": statistics.median(y / x for x, y in zip(a, b) if x),
            "a_ns": a, "b_ns": b}


def run_cpu(fd, pkt, repeat):
    """One test run: (the kernel's mean ns per repeat, whole ns; this thread's
    CPU time per repeat, ns as a float). The kernel's figure is truncated to
    whole ns, too coarse for a 2 % goal on a 20 ns program; the CPU time the
    kernel charges this thread for the syscall (which runs the repeats on it)
    resolves a fraction of a ns and, like the kernel's timer, leaves out the
    time the thread was preempted. It also holds the syscall's own entry and
    setup, a few us spread over the repeats."""
    before = time.thread_time_ns()
    run = libbpf.prog_test_run(fd, pkt, repeat=repeat)
    return run.duration_ns, (time.thread_time_ns() - before) / float(repeat)


def paired_cpu(fd_a, fd_b, pkt, repeat, runs):
    """paired() on both clocks, each program first in every other pair:
    medians of the per-pair ratios b / a by the thread's CPU time (the fine
    one) and by the kernel's whole-ns figure, and of the differences.
    fd_a, fd_b: a program each, or lists of loaded copies of one program: pair
    i runs copy i of each (round robin). Each copy's JITed code lands
    elsewhere in memory, which alone moves a 35 ns program by a few percent
    (alignment, branch-predictor aliasing); taking copies in turn averages
    that out of a comparison of two programs."""
    copies_a = fd_a if isinstance(fd_a, (list, tuple)) else [fd_a]
    copies_b = fd_b if isinstance(fd_b, (list, tuple)) else [fd_b]
    for fd in list(copies_a) + list(copies_b):
        libbpf.prog_test_run(fd, pkt, repeat=1000)  # warm up
    a, b = [], []
    for run in range(runs):
        fa, fb = copies_a[run % len(copies_a)], copies_b[run % len(copies_b)]
        order = ((fb, b), (fa, a)) if run % 2 else ((fa, a), (fb, b))
        for fd, into in order:
            into.append(run_cpu(fd, pkt, repeat))
    cpu_a, cpu_b = [x[1] for x in a], [x[1] for x in b]
    ker_a, ker_b = [x[0] for x in a], [x[0] for x in b]
    return {"ratio_median": statistics.median(y / x for x, y in zip(cpu_a, cpu_b)),
            "diff_median_ns": statistics.median(y - x for x, y in zip(cpu_a, cpu_b)),
            "ratio_median_kernel_ns": statistics.median(y / x for x, y in zip(ker_a, ker_b) if x),
            "ratios": [y / x for x, y in zip(cpu_a, cpu_b)], "copies": [len(copies_a), len(copies_b)],
            "a_cpu_ns": cpu_a, "b_cpu_ns": cpu_b, "a_ns": ker_a, "b_ns": ker_b,
            "a_median_cpu_ns": statistics.median(cpu_a), "b_median_cpu_ns": statistics.median(cpu_b)}


def children_cpu():
    """CPU seconds (user + system) of every child process reaped so far, theirs
    included: a module run's work without the time it waited for a CPU."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pinned_cpu():
    """The CPU measured processes are pinned to: the last this process may use.
    Unpinned, the scheduler moves them between CPUs and a process's CPU time,
    or the cost of a packet, moves by a tenth from run to run; pinned, by less
    than half that (control.py and traffic.py, measured on the shared machine)."""
    return max(os.sched_getaffinity(0))


@contextlib.contextmanager
def pinned():
    """Processes started inside run on pinned_cpu() (they inherit this process's
    affinity, which is restored after)."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {pinned_cpu()})
    try:
        yield pinned_cpu()
    finally:
        os.sched_setaffinity(0, saved)


def clang_path():
    """The clang the collection would use (the newest usable one)."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import find_clang
    return find_clang(run_subprocess).path


def cpu_model():
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def cpu_mitigations():
    """{vulnerability: what the kernel says} for every CPU vulnerability the
    kernel lists that is not "Not affected": what JITed code pays for here."""
    base = "/sys/devices/system/cpu/vulnerabilities"
    out = {}
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return out
    for name in names:
        with open(os.path.join(base, name)) as handle:
            state = handle.read().strip()
        if state != "Not affected":
            out[name] = state
    return out


def machine_facts(toolchain):
    cpu = cpu_model()
    return {
        "kernel": platform.release(),
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "libbpf": libbpf.libbpf_version(),
        "clang": toolchain.clang.banner.splitlines()[0] if toolchain.clang.banner else toolchain.clang.path,
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }


class Scratch:
    """Private bpffs root, state dir and compile cache of this run; all removed by close()."""

    def __init__(self):
        self.tag = "dpbench-%d-%s" % (os.getpid(), os.urandom(3).hex())
        self.tmp = tempfile.mkdtemp(prefix=self.tag + "-")
        self.bpffs = os.path.join("/sys/fs/bpf", self.tag)
        self.cache = os.path.join(self.tmp, "cache")
        self._native = {}

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def engine(self, sub):
        return Engine(os.path.join(self.bpffs, sub), os.path.join(self.tmp, "state-" + sub), run=run_subprocess)

    def native(self, name):
        """Build benchmarks/native/<name>.c for this host (once per run); its path."""
        if name not in self._native:
            out = self.path("native", name)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            subprocess.run([clang_path(), "-O2", "-Wall", "-Werror", "-o", out, os.path.join(NATIVE_DIR, name + ".c")],
                           check=True, stdin=subprocess.DEVNULL, timeout=120)
            self._native[name] = out
        return self._native[name]

    def close(self):
        remove_bpffs_tree(self.bpffs)
        shutil.rmtree(self.tmp, ignore_errors=True)
