# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real traffic: UDP packets per second through a veth pair with the dispatcher
at tc ingress (tcx) of the receiving end, with 0 and with 8 no-op plugins in
link mode, with the same 8 plugins in ``mode: inline``, with a pass-through
program that is no dispatcher (benchmarks/bpf/direct.c: what running any tc
program costs), and with no program at all for reference. The three
dispatchers are built by the engine, as the dispatcher module builds them
(checked: each runs in the mode asked); this section keeps each program open
and attaches the one a run measures with a tcx link of its own, so switching
configuration takes a millisecond and the runs of a round follow each other
closely.

The sender is benchmarks/native/udpgen.c (sendmmsg, 64-byte payloads, as fast
as the kernel takes them) in namespace a, pinned to one CPU, for a fixed time.
The receiving namespace b has a bound UDP socket nobody reads: every datagram that got past
tc ingress and the IP layer is counted by the kernel, either as delivered
(Udp InDatagrams) or as dropped for a full socket buffer (Udp RcvbufErrors).
Their sum over the sender's time is the rate. On a veth the sender's CPU also
runs the receive path (softirq in the sender's context, charged to it: this
kernel has no separate IRQ time accounting), so the packets per CPU-second of
the sender are the whole path's cost per packet, and unlike packets per second
they do not depend on how much of a CPU the busy machine gave the sender.
Configurations alternate within each round (ABC, then CBA), so drift on a
shared machine hits all of them alike; the ratio is the median of the per-round
ratios. Many short rounds rather than a few long ones: on a shared machine one
round's ratio spreads by several per cent however long its runs (0.1 s and 0.3 s
runs alike, measured), so the median's precision comes from the number of
rounds; its standard error is reported with it.

Then the goal's figure, 8 inline against no program, from many pairs of
adjacent short runs of just those two (none then 8 inline, then the other way
round): 300 pairs put its median within about half a point here.

Then, for 0 and 8 plugins, the same traffic once more with the kernel's BPF
statistics on (BPF_ENABLE_STATS, for those runs only: it adds two clock reads
to every program run on the machine): the dispatcher's own time per packet
under real traffic, caches as the network stack leaves them, which is what the
rate ratio is made of.
"""

import os
import socket
import statistics

from common import BPF_DIR, children_cpu, libbpf, log, pinned_cpu
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object
from lab import Lab

PORT = 9200
PAYLOAD = 64
# none: no program; direct: direct.c; 0, 8: link-mode dispatcher with that many
# no-op plugins; 8i: the same 8 plugins in mode inline (the engine's dispatchers).
CONFIGS = ("none", "direct", "0", "8", "8i")
ENGINE_CONFIGS = {"0": (0, "link"), "8": (8, "link"), "8i": (8, "inline")}
# Seconds per run of a goal pair: a pair's ratio spreads alike for 0.1 s and
# 0.3 s runs here, so short runs buy more pairs.
GOAL_PAIR_SECONDS = 0.1


class OwnAttachment:
    """Loaded programs this section attaches itself (tcx ingress of b, one
    unpinned link at a time: closing it detaches)."""

    def __init__(self, lab):
        self.lab = lab
        self.ifindex = lab.ifindex(lab.ns_b, lab.if_b)
        self.link_fd = None

    def attach(self, prog_fd):
        self.detach()
        with self.lab.in_ns(self.lab.ns_b):
            self.link_fd = bpf_link.tcx_link_create(prog_fd, self.ifindex, libbpf.BPF_TCX_INGRESS)

    def detach(self):
        if self.link_fd is not None:
            libbpf.close_fd(self.link_fd)
            self.link_fd = None


def udp_counters(lab, ns):
    """Udp counters of namespace ns, from /proc/thread-self/net/snmp read inside it."""
    with lab.in_ns(ns):
        with open("/proc/thread-self/net/snmp") as handle:
            rows = [line.split() for line in handle if line.startswith("Udp:")]
    return dict(zip(rows[0][1:], (int(v) for v in rows[1][1:])))


def send(scratch, lab, seconds, rate=0, count=10 ** 9, payload=PAYLOAD, port=PORT):
    """Run udpgen in namespace a on common.pinned_cpu(); (packets sent, seconds it
    sent for, its CPU seconds)."""
    cpu = children_cpu()
    proc = lab.run(lab.ns_a, "taskset", "-c", pinned_cpu(), scratch.native("udpgen"), lab.addr_b, port, seconds,
                   count, rate, payload, timeout=seconds + 30)
    words = proc.stdout.split()
    return int(words[1]), float(words[3]), children_cpu() - cpu


def _spec(lab, names, mode):
    hooks = [{"plugin": n, "function": "noop", "hook": "pre", "constraints": [], "priority": i}
             for i, n in enumerate(names)]
    return {"name": "traffic", "attach": "tc_ingress", "interface": lab.if_b, "netns": lab.ns_b, "mode": mode,
            "tc_backend": "tcx", "main": None, "position": None, "keep_generations": 2, "hooks": hooks}


def _engine_programs(scratch, lab, names):
    """{config: fd} of the engine's dispatcher for each of ENGINE_CONFIGS, built
    one after the other as one dispatcher's chain changes; the engine's
    dispatcher is removed again, the programs stay loaded while their fds are open."""
    fds = {}
    try:
        with scratch.engine("traffic") as eng:
            for config, (count, mode) in sorted(ENGINE_CONFIGS.items()):
                result = eng.ensure_dispatcher(_spec(lab, names[:count], mode))
                if result["mode"] != mode:
                    raise RuntimeError("traffic: dispatcher %s runs in mode %s, not %s"
                                       % (config, result["mode"], mode))
                fds[config] = libbpf.prog_fd_by_id(result["prog_id"])
            eng.remove_dispatcher("traffic")
    except BaseException:
        for fd in fds.values():
            libbpf.close_fd(fd)
        raise
    return fds


def _configure(own, fds, config):
    """Make config the one program at tc ingress of b."""
    if config == "none":
        own.detach()
    else:
        own.attach(fds[config])


def _in_traffic(scratch, lab, own, fds, seconds):
    """ns per program run under real traffic, from the kernel's run_time_ns/run_cnt."""
    out = {}
    stats = libbpf.enable_stats()
    try:
        for config in ("direct", "0", "8", "8i"):
            _configure(own, fds, config)
            before = libbpf.prog_info(fds[config])
            send(scratch, lab, seconds)
            after = libbpf.prog_info(fds[config])
            runs = after.run_cnt - before.run_cnt
            out[config] = {"runs": runs, "ns_per_run": (after.run_time_ns - before.run_time_ns) / float(runs or 1)}
    finally:
        libbpf.close_fd(stats)
    out["ns_per_plugin"] = (out["8"]["ns_per_run"] - out["0"]["ns_per_run"]) / 8.0
    out["ns_per_plugin_inline"] = (out["8i"]["ns_per_run"] - out["0"]["ns_per_run"]) / 8.0
    return out


def measure(scratch, lab, seconds):
    """One run: (datagrams that got past tc ingress, datagrams sent, seconds, sender CPU seconds)."""
    before = udp_counters(lab, lab.ns_b)
    sent, took, cpu = send(scratch, lab, seconds)
    after = udp_counters(lab, lab.ns_b)
    return sum(after[k] - before[k] for k in ("InDatagrams", "RcvbufErrors")), sent, took, cpu


def goal_pairs(scratch, lab, own, fds, pairs, seconds):
    """The goal's ratio, 8 inline over no program per sender CPU-second, from
    pairs of adjacent runs (none then 8i, then 8i then none, ...): nothing runs
    between the two runs a ratio compares."""
    ratios = []
    for number in range(pairs):
        rate = {}
        for config in (("none", "8i") if number % 2 == 0 else ("8i", "none")):
            _configure(own, fds, config)
            got, _sent, _took, cpu = measure(scratch, lab, seconds)
            rate[config] = got / cpu
        ratios.append(rate["8i"] / rate["none"])
    return ratios


def bench(scratch, rounds, seconds, pairs=0):
    names = ["tr%d" % i for i in range(8)]
    out = {"rounds": rounds, "seconds_per_run": seconds, "payload_bytes": PAYLOAD, "configs": list(CONFIGS),
           "goal_pairs": pairs, "goal_pair_seconds": GOAL_PAIR_SECONDS,
           "pps": dict((c, []) for c in CONFIGS), "sent_pps": dict((c, []) for c in CONFIGS),
           "per_cpu_s": dict((c, []) for c in CONFIGS)}
    direct = None
    fds = {}
    with Lab() as lab:
        lab.quiet()
        own = OwnAttachment(lab)
        with lab.in_ns(lab.ns_b):
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sink.bind((lab.addr_b, PORT))
            with scratch.engine("traffic") as eng:
                for name in names:
                    eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "noop.c"))
                direct = bpf_object.BpfObject.open_file(eng.toolchain.compile(os.path.join(BPF_DIR, "direct.c")).object_path)
            direct.load()
            fds.update(_engine_programs(scratch, lab, names))
            fds["direct"] = direct.program("direct").fd
            send(scratch, lab, 0.2)  # warm up: ARP is pinned, caches are not
            for number in range(rounds):
                # ABCDE EDCBA ...: a steady drift favours no configuration
                for config in (CONFIGS if number % 2 == 0 else tuple(reversed(CONFIGS))):
                    _configure(own, fds, config)
                    got, sent, took, cpu = measure(scratch, lab, seconds)
                    out["pps"][config].append(got / took)
                    out["sent_pps"][config].append(sent / took)
                    out["per_cpu_s"][config].append(got / cpu)
            out["goal_pair_ratios"] = goal_pairs(scratch, lab, own, fds, pairs, GOAL_PAIR_SECONDS)
            out["in_traffic"] = _in_traffic(scratch, lab, own, fds, max(seconds, 0.5))
        finally:
            own.detach()
            sink.close()
            for config in ENGINE_CONFIGS:
                if config in fds:
                    libbpf.close_fd(fds[config])
            if direct is not None:
                direct.close()
            with scratch.engine("traffic") as eng:
                eng.remove_dispatcher("traffic")
                for name in names:
                    eng.remove_plugin(name, force=True)
    med = dict((c, statistics.median(v)) for c, v in out["pps"].items())
    out["median_pps"] = med

    def ratios(key, num, den):
        return [b / a for a, b in zip(out[key][den], out[key][num])]

    out["ratio_8_vs_0"] = statistics.median(ratios("pps", "8", "0"))
    out["cpu_ratios"] = ratios("per_cpu_s", "8", "0")
    out["cpu_ratio_8_vs_0"] = statistics.median(out["cpu_ratios"])
    out["ratio_0_vs_none"] = statistics.median(ratios("pps", "0", "none"))
    # Issue 14's traffic goal: 8 plugins inline against no program at all,
    # from the goal pairs (the rounds' ratio when there are none).
    out["round_cpu_ratios_8i_vs_none"] = ratios("per_cpu_s", "8i", "none")
    out["cpu_ratios_8i_vs_none"] = out["goal_pair_ratios"] or out["round_cpu_ratios_8i_vs_none"]
    out["cpu_ratio_8i_vs_none"] = statistics.median(out["cpu_ratios_8i_vs_none"])
    out["round_cpu_ratio_8i_vs_none"] = statistics.median(out["round_cpu_ratios_8i_vs_none"])
    # The standard error of that median (1.2533 sigma / sqrt(n) for a normal
    # spread): what the report compares a near miss with.
    out["cpu_ratio_8i_vs_none_se"] = (1.2533 * statistics.pstdev(out["cpu_ratios_8i_vs_none"])
                                      / len(out["cpu_ratios_8i_vs_none"]) ** 0.5)
    out["sender_cpu"] = pinned_cpu()
    out["ratio_8i_vs_none"] = statistics.median(ratios("pps", "8i", "none"))
    for num in ("direct", "0", "8"):
        out["cpu_ratio_%s_vs_none" % num] = statistics.median(ratios("per_cpu_s", num, "none"))
    out["cpu_ratio_8i_vs_direct"] = statistics.median(ratios("per_cpu_s", "8i", "direct"))
    out["cpu_ratio_8i_vs_8"] = statistics.median(ratios("per_cpu_s", "8i", "8"))
    out["median_per_cpu_s"] = dict((c, statistics.median(v)) for c, v in out["per_cpu_s"].items())
    it = out["in_traffic"]
    log("traffic: %.0f pps without a program, %.0f direct, %.0f with 0 plugins, %.0f with 8, %.0f with 8 inline; "
        "per CPU second: 8 vs 0 %.1f %%, 8 inline vs none %.1f %% +- %.1f (direct vs none %.1f %%); the programs' time per "
        "packet in traffic: direct %.1f ns, 0 plugins %.1f ns, 8 %.1f ns, 8 inline %.1f ns"
        % (med["none"], med["direct"], med["0"], med["8"], med["8i"], out["cpu_ratio_8_vs_0"] * 100.0,
           out["cpu_ratio_8i_vs_none"] * 100.0, out["cpu_ratio_8i_vs_none_se"] * 100.0,
           out["cpu_ratio_direct_vs_none"] * 100.0,
           it["direct"]["ns_per_run"], it["0"]["ns_per_run"], it["8"]["ns_per_run"], it["8i"]["ns_per_run"]))
    return out


def summary(out):
    return {"traffic_pps_none": out["median_pps"]["none"], "traffic_pps_0": out["median_pps"]["0"],
            "traffic_pps_8": out["median_pps"]["8"], "traffic_ratio_8_vs_0": out["ratio_8_vs_0"],
            "traffic_cpu_ratio_8_vs_0": out["cpu_ratio_8_vs_0"],
            "traffic_ns_per_plugin_in_traffic": out["in_traffic"]["ns_per_plugin"],
            "traffic_pps_8_inline": out["median_pps"]["8i"], "traffic_pps_direct": out["median_pps"]["direct"],
            "traffic_cpu_ratio_8_inline_vs_none": out["cpu_ratio_8i_vs_none"],
            "traffic_cpu_ratio_8_inline_vs_none_se": out["cpu_ratio_8i_vs_none_se"],
            "traffic_cpu_ratio_8_inline_vs_direct": out["cpu_ratio_8i_vs_direct"],
            "traffic_cpu_ratio_8_link_vs_none": out["cpu_ratio_8_vs_none"],
            "traffic_cpu_ratio_direct_vs_none": out["cpu_ratio_direct_vs_none"]}
