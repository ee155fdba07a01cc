# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A soak: many chain changes under sequence-numbered traffic, and what a host
accumulates over them.

    benchmarks/soak.py [--changes 1000] [--rate 2000] [--out benchmarks/results/soak.json]   (root)

It writes the results JSON and the soak section of BENCHMARKS.md (benchmarks/report.py,
from the last full run's results and this one).

One dispatcher at tc ingress of a veth pair (tcx unless --backend clsact), keeping
3 generations, and a pool of plugins built from benchmarks/bpf/stamp.c (each its
own stamp id, -DSTAMP_COUNT for a pinned map of its own). Every change is applied
as a module applies it (a fresh converge.Engine: its lock, its registry load,
the compile cache in its state_dir) and is one of:

* reorder, add (a hook), remove (a hook): a new chain of the pool's plugins;
* rebuild: new code for a plugin of the chain (-DSTAMP_REV=<n>), so the plugin
  and the dispatcher are built again;
* install or uninstall: a plugin joins or leaves the pool (the host's plugin set);
* rollback: the previous kept generation runs again (one swap to its pin).

UDP with sequence numbers (benchmarks/native/udpgen.c) flows the whole time;
the receiver (udpsink.c) records each datagram's stamps. A packet is lost, duplicated,
processed twice (a plugin's id twice) or half-built (stamps that are no chain
ever applied); the soak wants 0 of each.

Every 100 changes it takes a census: the programs, maps and links of this run
(found through the kernel's id iteration with bpftool: a program is ours when it
uses one of our pinned maps, a map when it is pinned by us or used by one of our
programs, a link when it runs one of our programs), our pins, and state_dir's
bytes and files. Flat once the kept generations are full means: these stop
growing with the number of changes. The machine-wide totals are recorded too.
"""

import argparse
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time

from common import BPF_DIR, RESULTS, Scratch, log, machine_facts
from lab import Lab

PORT = 9100  # stamp.c's STAMP_PORT
PAYLOAD = 64
BASE_POOL = 6          # st1..st6 always installed
EXTRA_IDS = range(20, 250)  # stamp ids of plugins installed and removed during the soak
MAX_EXTRAS = 2
MAX_CHAIN = 7          # stamp slots in the payload
KEEP = 3
RECORD = struct.Struct("<QB7s")
DISPATCHER = "soak"
SUB = "soak"


def bpftool(*args):
    out = subprocess.run(["bpftool", "-j"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, check=False).stdout
    try:
        return json.loads(out or b"null")
    except ValueError:
        return None


def files_under(top):
    found = []
    for dirpath, _dirs, names in os.walk(top):
        found.extend(os.path.join(dirpath, n) for n in names)
    return found


def census(bpffs_root, state_dir):
    """Programs, maps, links and pins of this run; state_dir's bytes and files."""
    pins = files_under(bpffs_root)
    pinned_maps = set()
    pinned_progs = set()
    for pin in pins:
        info = bpftool("map", "show", "pinned", pin)
        if isinstance(info, dict) and "id" in info:
            pinned_maps.add(info["id"])
            continue
        info = bpftool("prog", "show", "pinned", pin)
        if isinstance(info, dict) and "id" in info:
            pinned_progs.add(info["id"])
    progs = bpftool("prog", "show") or []
    maps = bpftool("map", "show") or []
    links = bpftool("link", "show") or []
    ours = set(p["id"] for p in progs if p["id"] in pinned_progs or set(p.get("map_ids", [])) & pinned_maps)
    our_maps = set(pinned_maps)
    for p in progs:
        if p["id"] in ours:
            our_maps.update(p.get("map_ids", []))
    our_links = [link["id"] for link in links if link.get("prog_id") in ours]
    state_files = files_under(state_dir)
    return {"programs": len(ours), "maps": len(our_maps), "links": len(our_links), "pins": len(pins),
            "state_bytes": sum(os.lstat(f).st_size for f in state_files), "state_files": len(state_files),
            "machine_programs": len(progs), "machine_maps": len(maps), "machine_links": len(links)}


class Soak:
    """The run's host: its plugins, its dispatcher, and every chain it applied."""

    def __init__(self, scratch, lab, backend, seed):
        self.scratch = scratch
        self.lab = lab
        self.backend = backend
        self.rnd = random.Random(seed)
        self.ids = {}          # plugin name -> stamp id
        self.revs = {}         # plugin name -> code revision
        self.extra_ids = iter(EXTRA_IDS)
        self.applied = set()   # every chain (tuple of stamp ids) that ran
        self.ops = dict((op, 0) for op in ("reorder", "add", "remove", "rebuild", "install", "uninstall",
                                           "rollback"))
        self.state_dir = scratch.path("state-" + SUB)
        self.bpffs_root = os.path.join(scratch.bpffs, SUB)

    def engine(self):
        return self.scratch.engine(SUB)

    def cflags(self, name):
        return ["-DSTAMP_ID=%d" % self.ids[name], "-DSTAMP_COUNT", "-DSTAMP_REV=%d" % self.revs[name]]

    def install(self, name, stamp_id):
        self.ids[name], self.revs[name] = stamp_id, 0
        with self.engine() as eng:
            eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "stamp.c"), cflags=self.cflags(name))

    def registry(self):
        with open(os.path.join(self.state_dir, "registry.json")) as handle:
            return json.load(handle)

    def running(self):
        """(chain as plugin names, [(number, chain)] of the kept generations) from the registry."""
        disp = self.registry()["dispatchers"][DISPATCHER]
        gens = [(g["number"], tuple(p for p, _fn in g["chain"]["pre"])) for g in disp["generations"]]
        current = [chain for number, chain in gens if number == disp["generation"]]
        return current[0], gens, disp["generation"]

    def apply(self, names):
        hooks = [{"plugin": n, "function": "stamp", "hook": "pre", "constraints": [], "priority": pos}
                 for pos, n in enumerate(names)]
        spec = {"name": DISPATCHER, "attach": "tc_ingress", "interface": self.lab.if_b, "netns": self.lab.ns_b,
                "mode": "link", "tc_backend": self.backend, "main": None, "position": None,
                "keep_generations": KEEP, "hooks": hooks}
        with self.engine() as eng:
            eng.ensure_dispatcher(spec)
        self.note()

    def note(self):
        chain, _gens, _number = self.running()
        self.applied.add(tuple(self.ids[n] for n in chain))

    def step(self):
        """One chain change, chosen at random among those possible now."""
        chain, gens, number = self.running()
        chain = list(chain)
        pool = sorted(self.ids)
        idle = [n for n in pool if n not in chain]
        extras = [n for n in pool if n.startswith("sx")]
        in_kept = set(n for _num, c in gens for n in c)
        choices = ["reorder"] * 3 + ["rebuild"] * 2
        if len(chain) < MAX_CHAIN and idle:
            choices += ["add"] * 2
        if len(chain) > 1:
            choices += ["remove"] * 2
        if len(extras) < MAX_EXTRAS:
            choices.append("install")
        if [n for n in extras if n not in in_kept]:
            choices.append("uninstall")
        older = [(num, c) for num, c in gens if num < number]
        if older and all(n in self.ids for n in older[-1][1]):
            choices.append("rollback")
        op = self.rnd.choice(choices)
        if op == "reorder":
            if len(chain) == 1:
                op = "rebuild"
            else:
                new = list(chain)
                while new == chain:
                    self.rnd.shuffle(new)
                self.apply(new)
        if op == "add":
            new = list(chain)
            new.insert(self.rnd.randrange(len(new) + 1), self.rnd.choice(idle))
            self.apply(new)
        elif op == "remove":
            new = list(chain)
            new.pop(self.rnd.randrange(len(new)))
            self.apply(new)
        elif op == "rebuild":
            name = self.rnd.choice(chain)
            self.revs[name] += 1
            with self.engine() as eng:
                eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "stamp.c"), cflags=self.cflags(name))
            self.note()
        elif op == "install":
            stamp_id = next(self.extra_ids)
            self.install("sx%d" % stamp_id, stamp_id)
        elif op == "uninstall":
            name = self.rnd.choice([n for n in extras if n not in in_kept])
            with self.engine() as eng:
                eng.remove_plugin(name)
            del self.ids[name]
        elif op == "rollback":
            with self.engine() as eng:
                eng.rollback(DISPATCHER)
            self.note()
        self.ops[op] += 1


def analyse(path, sent, applied):
    seen = {}
    twice = half = 0
    with open(path, "rb") as handle:
        data = handle.read()
    for off in range(0, len(data) - RECORD.size + 1, RECORD.size):
        seq, count, ids = RECORD.unpack_from(data, off)
        seen[seq] = seen.get(seq, 0) + 1
        if count == 0xff or count > MAX_CHAIN or len(set(ids[:count])) != count:
            twice += 1
        elif tuple(ids[:count]) not in applied:
            half += 1
    received = sum(seen.values())
    return {"received": received, "lost": sent - sum(1 for s in seen if s < sent),
            "duplicated": received - len(seen), "processed_twice": twice, "half_built": half}


def run(changes, rate, backend, seed, every):
    scratch = Scratch()
    out = {"changes": changes, "rate_pps": rate, "backend": backend, "keep_generations": KEEP, "seed": seed,
           "census_every": every}
    try:
        with Lab() as lab:
            lab.quiet()
            soak = Soak(scratch, lab, backend, seed)
            for i in range(1, BASE_POOL + 1):
                soak.install("st%d" % i, i)
            soak.apply(["st1", "st2", "st3"])
            with soak.engine() as eng:
                out["machine"] = machine_facts(eng.toolchain)
            records = scratch.path("soak.bin")
            sink = subprocess.Popen(["ip", "netns", "exec", lab.ns_b, scratch.native("udpsink"), lab.addr_b,
                                     str(PORT), records, "7200", "1500"], stdout=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, text=True)
            sender = None
            try:
                if sink.stdout.readline().strip() != "ready":
                    raise RuntimeError("udpsink did not start")
                sender = subprocess.Popen(["ip", "netns", "exec", lab.ns_a, scratch.native("udpgen"), lab.addr_b,
                                           str(PORT), "7200", str(10 ** 10), str(rate), str(PAYLOAD)],
                                          stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
                time.sleep(0.3)
                censuses = [dict(census(soak.bpffs_root, soak.state_dir), changes=0, seconds=0.0)]
                t0 = time.monotonic()
                for n in range(1, changes + 1):
                    soak.step()
                    if n % every == 0 or n == changes:
                        censuses.append(dict(census(soak.bpffs_root, soak.state_dir), changes=n,
                                             seconds=round(time.monotonic() - t0, 1)))
                        log("soak: %d changes, %s" % (n, json.dumps(censuses[-1])))
                out["seconds"] = round(time.monotonic() - t0, 1)
                time.sleep(0.3)
                sender.send_signal(signal.SIGINT)
                sent = int(sender.communicate(timeout=30)[0].split()[1])
                sink_said = sink.communicate(timeout=60)[0].strip()
            finally:
                for proc in (sender, sink):
                    if proc is not None and proc.poll() is None:
                        proc.kill()
                        proc.wait()
            out.update({"sent": sent, "sink_said": sink_said, "operations": soak.ops,
                        "chains_applied": len(soak.applied), "census": censuses})
            out.update(analyse(records, sent, soak.applied))
            with soak.engine() as eng:
                eng.remove_dispatcher(DISPATCHER)
                for name in sorted(soak.ids):
                    eng.remove_plugin(name, force=True)
    finally:
        scratch.close()
    out["flat"] = flatness(out["census"], KEEP)
    return out


def flatness(censuses, keep):
    """Per measure, from the first census after the kept generations are full:
    the smallest and largest value, and whether it stopped growing, which is
    that no value of the later half of the run exceeds the largest of the
    earlier half by more than a quarter (a count that follows the plugin pool
    up and down is flat; one that climbs with the number of changes is not)."""
    settled = [c for c in censuses if c["changes"] >= max(100, keep)]
    half = len(settled) // 2
    out = {}
    for key in ("programs", "maps", "links", "pins", "state_bytes", "state_files"):
        values = [c[key] for c in settled]
        if len(values) >= 2:
            out[key] = {"min": min(values), "max": max(values),
                        "flat": max(values[half:]) <= 1.25 * max(values[:half])}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=2000, help="packets per second")
    parser.add_argument("--backend", choices=["tcx", "clsact"], default="tcx")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--every", type=int, default=100, help="changes between two censuses")
    parser.add_argument("--out", default=os.path.join(RESULTS, "soak.json"))
    parser.add_argument("--no-report", action="store_true",
                        help="leave BENCHMARKS.md alone (by default its soak section is written again)")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        sys.stderr.write("soak: needs root (BPF, netns)\n")
        return 1
    out = run(opts.changes, opts.rate, opts.backend, opts.seed, opts.every)
    out["date"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with open(opts.out, "w") as handle:
        json.dump(out, handle, indent=1, sort_keys=True)
        handle.write("\n")
    log("soak: %d changes (%s) in %.0f s; sent %d: lost %d, duplicated %d, processed twice %d, half-built %d; "
        "flat: %s" % (out["changes"], ", ".join("%d %s" % (v, k) for k, v in sorted(out["operations"].items())),
                      out["seconds"], out["sent"], out["lost"], out["duplicated"], out["processed_twice"],
                      out["half_built"], ", ".join("%s %s" % (k, v["flat"]) for k, v in sorted(out["flat"].items()))))
    full = os.path.join(RESULTS, "full.json")
    if not opts.no_report and os.path.exists(full):
        import report  # BENCHMARKS.md from the last full run, with this soak's section
        report.main([full, "--keep-plots", "--soak", opts.out])
    bad = out["lost"] + out["duplicated"] + out["processed_twice"] + out["half_built"]
    return 1 if bad or not all(v["flat"] for v in out["flat"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
