# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Swaps under load: UDP with sequence numbers at a steady rate through the
dispatcher while the chain is changed many times (plugins added, removed,
reordered), each change applied as a module would (converge.Engine, its own
lock and registry load, warm compile cache).

Every plugin is benchmarks/bpf/stamp.c built with its own id; it appends that
id to a stamp area in the payload. Each chain version is a distinct ordered list
of ids, so the receiver (benchmarks/native/udpsink.c) knows, for every packet,
which plugins processed it and in which order. A packet is:

* lost: its sequence number never arrived;
* duplicated: its sequence number arrived more than once;
* processed twice: one plugin's id appears twice in its stamps (or the area
  overflowed);
* half-built: its stamps are not exactly the chain of any version applied.

The attach point is a parameter: tcx (a bpf_link update) or clsact (a cls_bpf
filter replace); both are atomic swaps by design, this checks it with packets.
Before the load starts, every version's dispatcher is compiled and linked once
(the warm cache a rerun has), so the swap rate is that of load + attach.
"""

import os
import random
import signal
import statistics
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from common import BPF_DIR, log
from lab import Lab
from traffic import udp_counters
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod

PORT = 9100  # stamp.c's STAMP_PORT
PAYLOAD = 64
POOL = 8  # plugins st1..st8, stamp ids 1..8
MAX_CHAIN = 7  # stamp slots in the payload
RECORD = struct.Struct("<QB7s")


def versions(changes, seed=6):
    """changes + 1 distinct chains (tuples of stamp ids), each one edit from the last."""
    rnd = random.Random(seed)
    chains = [(1, 2, 3, 4)]
    seen = set(chains)
    ops = {"add": 0, "remove": 0, "reorder": 0}
    while len(chains) <= changes:
        cur = list(chains[-1])
        choices = [op for op, ok in (("add", len(cur) < MAX_CHAIN), ("remove", len(cur) > 1),
                                     ("reorder", len(cur) > 1)) if ok]
        op = rnd.choice(choices)
        new = list(cur)
        if op == "add":
            new.insert(rnd.randrange(len(new) + 1), rnd.choice([i for i in range(1, POOL + 1) if i not in cur]))
        elif op == "remove":
            new.pop(rnd.randrange(len(new)))
        else:
            while new == cur:
                rnd.shuffle(new)
        if tuple(new) in seen:
            continue  # a distinct marker per version, or the receiver cannot tell them apart
        seen.add(tuple(new))
        chains.append(tuple(new))
        ops[op] += 1
    return chains, ops


def _plugin(stamp_id):
    return "st%d" % stamp_id


def _spec(lab, chain, backend):
    hooks = [{"plugin": _plugin(i), "function": "stamp", "hook": "pre", "constraints": [], "priority": pos}
             for pos, i in enumerate(chain)]
    return {"name": "swap", "attach": "tc_ingress", "interface": lab.if_b, "netns": lab.ns_b, "mode": "link",
            "tc_backend": backend, "main": None, "position": None, "keep_generations": 2, "hooks": hooks}


def _expected(chain):
    return [[_plugin(i), "stamp"] for i in chain]


def _warm(eng, chains):
    """Compile and link every version's dispatcher into the cache (two at a time)."""
    plugins = eng.registry.plugins

    def one(chain):
        disp_mod.prepare_link(eng.toolchain, eng.layout, "tc", {"pre": _expected(chain), "post": []}, None, plugins)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, chains))


def analyse(path, sent, chains):
    """Read udpsink's records; count what the module docstring defines."""
    index = dict((c, v) for v, c in enumerate(chains))
    seen = {}
    twice = half = regressions = 0
    per_version = [0] * len(chains)
    last_version = -1
    with open(path, "rb") as handle:
        data = handle.read()
    for off in range(0, len(data) - RECORD.size + 1, RECORD.size):
        seq, count, ids = RECORD.unpack_from(data, off)
        seen[seq] = seen.get(seq, 0) + 1
        if count == 0xff or count > MAX_CHAIN:
            twice += 1
            continue
        stamps = tuple(ids[:count])
        if len(set(stamps)) != len(stamps):
            twice += 1
            continue
        version = index.get(stamps)
        if version is None:
            half += 1
            continue
        per_version[version] += 1
        if version < last_version:
            regressions += 1  # an older chain after a newer one: only reordering could explain it
        last_version = max(last_version, version)
    received = sum(seen.values())
    unique = len(seen)
    in_range = sum(1 for s in seen if s < sent)
    return {"received": received, "lost": sent - in_range, "duplicated": received - unique,
            "processed_twice": twice, "half_built": half, "version_regressions": regressions,
            "versions_seen": sum(1 for n in per_version if n), "packets_per_version": per_version}


def run_backend(scratch, backend, changes, rate, min_packets):
    chains, ops = versions(changes)
    sub = "swap-" + backend
    out = {"backend": backend, "changes": changes, "rate_pps": rate, "payload_bytes": PAYLOAD, "operations": ops}
    with Lab() as lab:
        lab.quiet()
        try:
            with scratch.engine(sub) as eng:
                for i in range(1, POOL + 1):
                    eng.ensure_plugin(_plugin(i), src=os.path.join(BPF_DIR, "stamp.c"), cflags=["-DSTAMP_ID=%d" % i])
                t0 = time.perf_counter()
                _warm(eng, chains)
                out["warm_seconds"] = time.perf_counter() - t0
                eng.ensure_dispatcher(_spec(lab, chains[0], backend))
            out.update(_under_load(scratch, lab, sub, backend, chains, rate, min_packets))
        finally:
            with scratch.engine(sub) as eng:
                eng.remove_dispatcher("swap")
                for i in range(1, POOL + 1):
                    eng.remove_plugin(_plugin(i), force=True)
    log("swaps under load (%s): %d changes (%s) in %.2f s, sent %d at %d pps: lost %d, duplicated %d, "
        "processed twice %d, half-built %d; %d of %d versions seen"
        % (backend, changes, ", ".join("%d %s" % (n, op) for op, n in sorted(ops.items())), out["swap_seconds"],
           out["sent"], rate, out["lost"], out["duplicated"], out["processed_twice"], out["half_built"],
           out["versions_seen"], len(chains)))
    return out


def _under_load(scratch, lab, sub, backend, chains, rate, min_packets):
    records = scratch.path("swap-%s.bin" % backend)
    before = udp_counters(lab, lab.ns_b)
    sink = subprocess.Popen(["ip", "netns", "exec", lab.ns_b, scratch.native("udpsink"), lab.addr_b, str(PORT),
                             records, "600", "1500"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    sender = None
    try:
        if sink.stdout.readline().strip() != "ready":
            raise RuntimeError("udpsink did not start")
        sender = subprocess.Popen(["ip", "netns", "exec", lab.ns_a, scratch.native("udpgen"), lab.addr_b, str(PORT),
                                   "600", str(10 ** 9), str(rate), str(PAYLOAD)],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        started = time.perf_counter()
        time.sleep(0.3)  # some packets through version 0 first
        swap_times = []
        for version in range(1, len(chains)):
            t0 = time.perf_counter()
            with scratch.engine(sub) as eng:
                result = eng.ensure_dispatcher(_spec(lab, chains[version], backend))
            swap_times.append(time.perf_counter() - t0)
            if result["chain"]["pre"] != _expected(chains[version]):
                raise RuntimeError("version %d: the engine built %s, expected %s"
                                   % (version, result["chain"]["pre"], _expected(chains[version])))
        swap_seconds = sum(swap_times)
        # Keep sending through the last version, and long enough for min_packets.
        time.sleep(max(0.3, min_packets / float(rate) - (time.perf_counter() - started)))
        sender.send_signal(signal.SIGINT)
        words = sender.communicate(timeout=30)[0].split()
        sent = int(words[1])
        sink_out = sink.communicate(timeout=60)[0]
    finally:
        for proc in (sender, sink):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    after = udp_counters(lab, lab.ns_b)
    out = {"sent": sent, "swap_seconds": swap_seconds, "swap_ms": [t * 1000.0 for t in swap_times],
           "swap_median_ms": statistics.median(swap_times) * 1000.0,
           "swap_max_ms": max(swap_times) * 1000.0, "socket_drops": after["RcvbufErrors"] - before["RcvbufErrors"],
           "sink_said": sink_out.strip()}
    out.update(analyse(records, sent, chains))
    os.unlink(records)
    return out


def bench(scratch, backends, changes, rate, min_packets):
    out = {}
    for backend in backends:
        out[backend] = run_backend(scratch, backend, changes, rate, min_packets)
    return out


def summary(out):
    """Totals over every backend: the numbers compared with the goal."""
    total = dict((k, sum(r[k] for r in out.values())) for k in
                 ("sent", "lost", "duplicated", "processed_twice", "half_built"))
    return {"swap_backends": sorted(out), "swap_changes": min(r["changes"] for r in out.values()),
            "swap_sent": total["sent"], "swap_lost": total["lost"],
            "swap_double": total["duplicated"] + total["processed_twice"], "swap_half_built": total["half_built"]}
