# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmarks of ebpf.datapath, in one process (root): measure, never judge.

1. packet path, BPF_PROG_TEST_RUN on one Ethernet/IPv4/UDP packet (64-byte
   payload): a direct pass-through tc program (and one that also saves, zeroes
   and restores cb[4] as the dispatcher does); the link-mode dispatcher with
   0, 1, 8, 32, 64 no-op plugins; a tail-call chain (custom-call style) of
   0, 1, 8, 32 hops (the kernel stops a tail-call chain after 33 calls, so 64
   hops cannot be built that way).
2. the chain solver on 10,000 entries and 50,000 random acyclic constraints.
3. the control plane through converge.Engine, in process, warm compile cache:
   first apply, no-op rerun, chain change, clang runs of each.
4. swaps under load: UDP through a veth while the chain is swapped; sent/lost.

Writes benchmarks/results/<mode>.json. Slow numbers are reported, not failed on;
benchmarks/report.py compares them with the goals in BENCHMARKS.md.
Everything made here (netns, veth, bpffs pins, temp dirs) is removed on exit.
"""

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BPF_DIR = os.path.join(HERE, "bpf")
RESULTS = os.path.join(HERE, "results")


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

from ansible_collections.ebpf.datapath.plugins.module_utils import chain as chain_mod  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils.state import remove_bpffs_tree  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain  # noqa: E402

from lab import Lab  # noqa: E402

TC_ACT_OK = 0
PLUGIN_COUNTS = (0, 1, 8, 32, 64)
HOP_COUNTS = (0, 1, 8, 32)
MAX_TAIL_CALLS = 33  # the kernel's MAX_TAIL_CALL_CNT


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ------------------------------------------------------------------ helpers

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


def machine_facts(toolchain):
    cpu = None
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "kernel": platform.release(),
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "libbpf": libbpf.libbpf_version(),
        "clang": toolchain.clang.banner.splitlines()[0] if toolchain.clang.banner else toolchain.clang.path,
        "python": platform.python_version(),
    }


class Scratch:
    """Private bpffs root, state dir and compile cache of this run; all removed by close()."""

    def __init__(self):
        self.tag = "dpbench-%d-%s" % (os.getpid(), os.urandom(3).hex())
        self.tmp = tempfile.mkdtemp(prefix=self.tag + "-")
        self.bpffs = os.path.join("/sys/fs/bpf", self.tag)
        self.cache = os.path.join(self.tmp, "cache")

    def engine(self, sub):
        return Engine(os.path.join(self.bpffs, sub), os.path.join(self.tmp, "state-" + sub))

    def close(self):
        remove_bpffs_tree(self.bpffs)
        shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------- packet path

def time_prog(fd, pkt, repeat, runs):
    """Median (and all) of `runs` test runs, each averaged by the kernel over `repeat`."""
    first = libbpf.prog_test_run(fd, pkt, repeat=1000)  # warm the caches
    if first.retval != TC_ACT_OK:
        raise RuntimeError("program returned %d, expected TC_ACT_OK: not the path we meant to time" % first.retval)
    samples = [libbpf.prog_test_run(fd, pkt, repeat=repeat).duration_ns for _run in range(runs)]
    return {"median_ns": statistics.median(samples), "min_ns": min(samples), "samples_ns": samples}


def bench_packet_path(scratch, repeat, runs):
    pkt = udp_packet()
    out = {"packet_bytes": len(pkt), "repeat": repeat, "runs": runs}

    # Direct pass-through and the tail-call chain: plain objects, no engine.
    tc = Toolchain(scratch.cache)
    direct = libbpf.BpfObject.open_file(tc.compile(os.path.join(BPF_DIR, "direct.c")).object_path)
    try:
        direct.load()
        out["direct"] = time_prog(direct.program("direct").fd, pkt, repeat, runs)
        out["direct_cb"] = time_prog(direct.program("direct_cb").fd, pkt, repeat, runs)
        log("direct: %.2f ns, direct with the cb[4] save/restore: %.2f ns"
            % (out["direct"]["median_ns"], out["direct_cb"]["median_ns"]))
        _bench_tailcalls(tc, out, pkt, repeat, runs)
        _bench_link(scratch, out, pkt, repeat, runs, direct.program("direct").fd)
    finally:
        direct.close()

    xs = list(PLUGIN_COUNTS)
    out["link_fit"] = dict(zip(("slope_ns", "intercept_ns"),
                               fit_slope(xs, [out["link"][str(n)]["median_ns"] for n in xs])))
    xs = list(HOP_COUNTS)
    out["tailcall_fit"] = dict(zip(("slope_ns", "intercept_ns"),
                                   fit_slope(xs, [out["tailcall"][str(n)]["median_ns"] for n in xs])))
    return out


def paired(fd_a, fd_b, pkt, repeat, runs):
    """Runs of a and b alternated, so drift on a shared machine hits both alike:
    the median of the per-pair differences b - a."""
    a, b = [], []
    for _run in range(runs):
        a.append(libbpf.prog_test_run(fd_a, pkt, repeat=repeat).duration_ns)
        b.append(libbpf.prog_test_run(fd_b, pkt, repeat=repeat).duration_ns)
    return {"diff_median_ns": statistics.median(y - x for x, y in zip(a, b)), "a_ns": a, "b_ns": b}


def _bench_tailcalls(tc, out, pkt, repeat, runs):
    """The tail-call chain, custom-call style, of each length in HOP_COUNTS."""
    tail = libbpf.BpfObject.open_file(tc.compile(os.path.join(BPF_DIR, "tailcall.c")).object_path)
    try:
        tail.load()
        entry_fd, hop_fd, hops_fd = tail.program("entry").fd, tail.program("hop").fd, tail.map("hops").fd
        out["tailcall"] = {}
        for n in HOP_COUNTS:
            for slot in range(64):
                key = struct.pack("I", slot)
                if slot < n:
                    libbpf.map_update(hops_fd, key, struct.pack("I", hop_fd))
                else:
                    libbpf.map_delete(hops_fd, key)
            out["tailcall"][str(n)] = time_prog(entry_fd, pkt, repeat, runs)
            log("tail calls, %d hops: %.2f ns" % (n, out["tailcall"][str(n)]["median_ns"]))
    finally:
        tail.close()


def _bench_link(scratch, out, pkt, repeat, runs, direct_fd):
    """Link-mode dispatchers built exactly as the engine builds them."""
    names = ["noop%02d" % i for i in range(max(PLUGIN_COUNTS))]
    with scratch.engine("pkt") as eng:
        for name in names:
            eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "noop.c"))
        out["link"] = {}
        for n in PLUGIN_COUNTS:
            chain = {"pre": [[name, "noop"] for name in names[:n]], "post": []}
            dname = "bench%d" % n
            built = disp_mod.build_link(eng.toolchain, eng.layout, dname, "tc", chain, None,
                                        eng.registry.plugins, eng.layout.generation_prog_pin(dname, 1))
            try:
                out["link"][str(n)] = time_prog(built.fd, pkt, repeat, runs)
                if n == 0:
                    out["empty_minus_direct_paired"] = paired(direct_fd, built.fd, pkt, repeat, runs)
            finally:
                built.close()
                remove_bpffs_tree(eng.layout.dispatcher_dir(dname))
            log("link dispatcher, %d no-op plugins: %.2f ns" % (n, out["link"][str(n)]["median_ns"]))
        for name in names:
            eng.remove_plugin(name)


# ------------------------------------------------------------------ solver

def bench_solver(n_entries=10000, n_constraints=50000, runs=3, seed=41634):
    rnd = random.Random(seed)
    names = ["p%05d" % i for i in range(n_entries)]
    rank = list(range(n_entries))
    rnd.shuffle(rank)  # a hidden order every constraint agrees with: acyclic
    entries = [{"plugin": name, "function": "fn", "priority": rnd.randrange(100), "constraints": []}
               for name in names]
    for _constraint in range(n_constraints):
        a, b = rnd.sample(range(n_entries), 2)
        if rank[a] > rank[b]:
            a, b = b, a
        if rnd.random() < 0.5:
            entries[a]["constraints"].append({"anchor": "before", "plugin": names[b]})
        else:
            entries[b]["constraints"].append({"order": "AFTER", "plugin": names[a]})
    times = []
    for _run in range(runs):
        t0 = time.perf_counter()
        solution = chain_mod.solve(entries)
        times.append(time.perf_counter() - t0)
    # Not a test, but a number for a wrong answer would be worthless: check it.
    pos = dict((plugin, i) for i, (plugin, _f) in enumerate(solution.order))
    if len(pos) != n_entries:
        raise RuntimeError("solver returned %d entries for %d" % (len(pos), n_entries))
    for i, entry in enumerate(entries):
        for c in entry["constraints"]:
            before = c.get("anchor") == "before"
            if (pos[names[i]] < pos[c["plugin"]]) != before:
                raise RuntimeError("solver broke a constraint of %s" % names[i])
    log("solver: %.3f s (median of %d)" % (statistics.median(times), runs))
    return {"entries": n_entries, "constraints": n_constraints, "runs": runs,
            "median_s": statistics.median(times), "samples_s": times}


# ---------------------------------------------------- control plane + swaps

def _spec(lab, names, reverse):
    hooks = [{"plugin": n, "function": "noop", "hook": "pre", "constraints": [],
              "priority": (len(names) - i) if reverse else i} for i, n in enumerate(names)]
    hooks.sort(key=lambda h: (h["hook"], h["plugin"], h["function"]))
    return {"name": "bench", "attach": "tc_ingress", "interface": lab.if_b, "netns": lab.ns_b, "mode": "link",
            "tc_backend": "tcx", "main": None, "position": None, "keep_generations": 3, "hooks": hooks}


def _apply(scratch, sub, lab, names, reverse):
    """One run as a module would do it: lock, load, plugins, dispatcher. Returns
    (seconds, changed, clang runs)."""
    t0 = time.perf_counter()
    with scratch.engine(sub) as eng:
        changed = False
        for name in names:
            changed |= eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "noop.c"))[0]
        changed |= eng.ensure_dispatcher(_spec(lab, names, reverse))["changed"]
        runs = eng.toolchain.clang_runs
    return time.perf_counter() - t0, changed, runs


def _teardown(scratch, sub, names):
    with scratch.engine(sub) as eng:
        if "bench" in eng.registry.dispatchers:
            eng.remove_dispatcher("bench")
        for name in names:
            eng.remove_plugin(name, force=True)


class UdpLoad:
    """UDP from netns a to b at a steady pace, counted on both ends."""

    def __init__(self, lab, port=9999):
        self.lab, self.port = lab, port
        self.sent = self.received = 0
        self.stop = threading.Event()
        with lab.in_ns(lab.ns_b):
            self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.rx.bind((lab.addr_b, port))
        self.rx.settimeout(0.2)
        with lab.in_ns(lab.ns_a):
            self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.threads = [threading.Thread(target=self._send), threading.Thread(target=self._recv)]

    def _send(self):
        payload = b"x" * 64
        while not self.stop.is_set():
            for _burst in range(50):
                self.tx.sendto(payload, (self.lab.addr_b, self.port))
                self.sent += 1
            time.sleep(0.0005)  # leave the GIL to the swapping thread

    def _recv(self):
        quiet = 0
        while quiet < 3:
            try:
                self.rx.recv(2048)
                self.received += 1
                quiet = 0
            except socket.timeout:
                if self.stop.is_set():
                    quiet += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()
        self.tx.close()
        self.rx.close()


def bench_control_plane(scratch, swaps, n_plugins=8, reruns=5):
    names = ["cp%02d" % i for i in range(n_plugins)]
    out = {"in_process": True, "plugins": n_plugins, "reruns": reruns}
    with Lab() as lab:
        try:
            # Warm the compile cache: both chains once, then forget the host.
            _apply(scratch, "warm", lab, names, False)
            _apply(scratch, "warm", lab, names, True)
            _teardown(scratch, "warm", names)

            first = _apply(scratch, "cp", lab, names, False)
            out["first_apply_s"], out["first_apply_clang_runs"] = first[0], first[2]
            noop = [_apply(scratch, "cp", lab, names, False) for _rerun in range(reruns)]
            out["noop_rerun_s"] = statistics.median(r[0] for r in noop)
            out["noop_rerun_samples_s"] = [r[0] for r in noop]
            out["noop_rerun_changed"] = any(r[1] for r in noop)
            out["noop_rerun_clang_runs"] = sum(r[2] for r in noop)
            change = [_apply(scratch, "cp", lab, names, i % 2 == 0) for i in range(reruns)]
            out["chain_change_s"] = statistics.median(r[0] for r in change)
            out["chain_change_samples_s"] = [r[0] for r in change]
            out["chain_change_clang_runs"] = sum(r[2] for r in change)
            log("control plane: first %.3f s, no-op rerun %.3f s (clang %d), chain change %.3f s"
                % (out["first_apply_s"], out["noop_rerun_s"], out["noop_rerun_clang_runs"], out["chain_change_s"]))

            # Swaps under load; a baseline of the same length without swaps shows
            # what the sockets alone lose.
            with UdpLoad(lab) as load:
                t0 = time.perf_counter()
                for i in range(swaps):
                    _apply(scratch, "cp", lab, names, i % 2 == 1)
                swap_time = time.perf_counter() - t0
            out["swap"] = {"swaps": swaps, "seconds": swap_time, "sent": load.sent,
                           "received": load.received, "lost": load.sent - load.received}
            with UdpLoad(lab) as base:
                time.sleep(swap_time)
            out["swap_baseline"] = {"seconds": swap_time, "sent": base.sent, "received": base.received,
                                    "lost": base.sent - base.received}
            log("swaps under load: %d swaps, sent %d, lost %d (baseline without swaps: sent %d, lost %d)"
                % (swaps, load.sent, out["swap"]["lost"], base.sent, out["swap_baseline"]["lost"]))
        finally:
            for sub in ("warm", "cp"):
                try:
                    _teardown(scratch, sub, names)
                except Exception as exc:  # report, keep cleaning
                    log("teardown %s: %s" % (sub, exc))
    return out


# -------------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--mode", choices=("quick", "full"), default="quick")
    parser.add_argument("--repeat", type=int, help="BPF_PROG_TEST_RUN repeats per run")
    parser.add_argument("--runs", type=int, help="runs per variant (the median is reported)")
    parser.add_argument("--swaps", type=int, help="chain swaps under load")
    parser.add_argument("--out", help="JSON output (default benchmarks/results/<mode>.json)")
    args = parser.parse_args(argv)
    full = args.mode == "full"
    repeat = args.repeat or (3000000 if full else 1000000)
    runs = args.runs or (11 if full else 7)
    swaps = args.swaps or (100 if full else 20)
    if os.geteuid() != 0:
        sys.exit("benchmarks need root (BPF, netns, bpffs)")
    libbpf.ensure_bpffs("/sys/fs/bpf")

    scratch = Scratch()
    os.environ["EBPF_DATAPATH_CACHE_DIR"] = scratch.cache  # one warm cache for every engine here
    started = time.time()
    try:
        facts = machine_facts(Toolchain(scratch.cache))
        packet = bench_packet_path(scratch, repeat, runs)
        solver = bench_solver(runs=5 if full else 3)
        control = bench_control_plane(scratch, swaps)
    finally:
        scratch.close()

    link, tail = packet["link"], packet["tailcall"]
    result = {
        "mode": args.mode,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": time.time() - started,
        "machine": facts,
        "ns_direct": packet["direct"]["median_ns"],
        "ns_direct_cb": packet["direct_cb"]["median_ns"],
        "ns_dispatcher_empty": link["0"]["median_ns"],
        "ns_dispatcher_empty_over_direct_paired": packet["empty_minus_direct_paired"]["diff_median_ns"],
        "ns_dispatcher_by_plugins": dict((k, v["median_ns"]) for k, v in link.items()),
        "ns_per_plugin_link": packet["link_fit"]["slope_ns"],
        "ns_tailcall_by_hops": dict((k, v["median_ns"]) for k, v in tail.items()),
        "ns_per_hop_tailcall": packet["tailcall_fit"]["slope_ns"],
        "tailcall_hops_max": MAX_TAIL_CALLS,
        "solver_10k_s": solver["median_s"],
        "control_first_apply_s": control["first_apply_s"],
        "control_noop_rerun_s": control["noop_rerun_s"],
        "control_noop_rerun_clang_runs": control["noop_rerun_clang_runs"],
        "control_chain_change_s": control["chain_change_s"],
        "swap_sent": control["swap"]["sent"],
        "swap_lost": control["swap"]["lost"],
        "details": {"packet_path": packet, "solver": solver, "control_plane": control},
    }
    path = args.out or os.path.join(RESULTS, "%s.json" % args.mode)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)
    log("wrote %s (%.0f s)" % (path, result["wall_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
