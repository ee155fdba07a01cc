# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real traffic: UDP packets per second through a veth pair with the dispatcher
at tc ingress (tcx) of the receiving end, with 0 and with 8 no-op plugins, and
with no dispatcher at all for reference.

The sender is benchmarks/native/udpgen.c (sendmmsg, 64-byte payloads, as fast
as the kernel takes them) in namespace a, for a fixed time. The receiving
namespace b has a bound UDP socket nobody reads: every datagram that got past
tc ingress and the IP layer is counted by the kernel, either as delivered
(Udp InDatagrams) or as dropped for a full socket buffer (Udp RcvbufErrors).
Their sum over the sender's time is the rate. On a veth the sender's CPU also
runs the receive path (softirq in the sender's context, charged to it: this
kernel has no separate IRQ time accounting), so the packets per CPU-second of
the sender are the whole path's cost per packet, and unlike packets per second
they do not depend on how much of a CPU the busy machine gave the sender.
Configurations alternate within each round (ABC, then CBA), so drift on a
shared machine hits all of them alike; the ratio is the median of the per-round
ratios.

Then, for 0 and 8 plugins, the same traffic once more with the kernel's BPF
statistics on (BPF_ENABLE_STATS, for those runs only: it adds two clock reads
to every program run on the machine): the dispatcher's own time per packet
under real traffic, caches as the network stack leaves them, which is what the
rate ratio is made of.
"""

import os
import resource
import socket
import statistics

from common import BPF_DIR, libbpf, log
from lab import Lab

PORT = 9200
PAYLOAD = 64
CONFIGS = ("none", "0", "8")


def udp_counters(lab, ns):
    """Udp counters of namespace ns, from /proc/thread-self/net/snmp read inside it."""
    with lab.in_ns(ns):
        with open("/proc/thread-self/net/snmp") as handle:
            rows = [line.split() for line in handle if line.startswith("Udp:")]
    return dict(zip(rows[0][1:], (int(v) for v in rows[1][1:])))


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def send(scratch, lab, seconds, rate=0, count=10 ** 9, payload=PAYLOAD, port=PORT):
    """Run udpgen in namespace a; (packets sent, seconds it sent for, its CPU seconds)."""
    cpu = _children_cpu()
    proc = lab.run(lab.ns_a, scratch.native("udpgen"), lab.addr_b, port, seconds, count, rate, payload,
                   timeout=seconds + 30)
    words = proc.stdout.split()
    return int(words[1]), float(words[3]), _children_cpu() - cpu


def _spec(lab, names):
    hooks = [{"plugin": n, "function": "noop", "hook": "pre", "constraints": [], "priority": i}
             for i, n in enumerate(names)]
    return {"name": "traffic", "attach": "tc_ingress", "interface": lab.if_b, "netns": lab.ns_b, "mode": "link",
            "tc_backend": "tcx", "main": None, "position": None, "keep_generations": 2, "hooks": hooks}


def _in_traffic(scratch, lab, names, seconds):
    """ns per dispatcher run under real traffic, from the kernel's run_time_ns/run_cnt."""
    out = {}
    stats = libbpf.enable_stats()
    try:
        for config in ("0", "8"):
            with scratch.engine("traffic") as eng:
                prog_id = eng.ensure_dispatcher(_spec(lab, names[:int(config)]))["prog_id"]
            fd = libbpf.prog_fd_by_id(prog_id)
            try:
                before = libbpf.prog_info(fd)
                send(scratch, lab, seconds)
                after = libbpf.prog_info(fd)
            finally:
                libbpf.close_fd(fd)
            runs = after.run_cnt - before.run_cnt
            out[config] = {"runs": runs, "ns_per_run": (after.run_time_ns - before.run_time_ns) / float(runs or 1)}
    finally:
        libbpf.close_fd(stats)
    out["ns_per_plugin"] = (out["8"]["ns_per_run"] - out["0"]["ns_per_run"]) / 8.0
    return out


def bench(scratch, rounds, seconds):
    names = ["tr%d" % i for i in range(8)]
    out = {"rounds": rounds, "seconds_per_run": seconds, "payload_bytes": PAYLOAD, "configs": list(CONFIGS),
           "pps": dict((c, []) for c in CONFIGS), "sent_pps": dict((c, []) for c in CONFIGS),
           "per_cpu_s": dict((c, []) for c in CONFIGS)}
    with Lab() as lab:
        lab.quiet()
        with lab.in_ns(lab.ns_b):
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sink.bind((lab.addr_b, PORT))
            with scratch.engine("traffic") as eng:
                for name in names:
                    eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "noop.c"))
            send(scratch, lab, 0.2)  # warm up: ARP is pinned, caches are not
            for number in range(rounds):
                # ABC CBA ...: a steady drift favours no configuration
                for config in (CONFIGS if number % 2 == 0 else tuple(reversed(CONFIGS))):
                    with scratch.engine("traffic") as eng:
                        if config == "none":
                            eng.remove_dispatcher("traffic")
                        else:
                            eng.ensure_dispatcher(_spec(lab, names[:int(config)]))
                    before = udp_counters(lab, lab.ns_b)
                    sent, took, cpu = send(scratch, lab, seconds)
                    after = udp_counters(lab, lab.ns_b)
                    got = sum(after[k] - before[k] for k in ("InDatagrams", "RcvbufErrors"))
                    out["pps"][config].append(got / took)
                    out["sent_pps"][config].append(sent / took)
                    out["per_cpu_s"][config].append(got / cpu)
            out["in_traffic"] = _in_traffic(scratch, lab, names, seconds)
        finally:
            sink.close()
            with scratch.engine("traffic") as eng:
                eng.remove_dispatcher("traffic")
                for name in names:
                    eng.remove_plugin(name, force=True)
    med = dict((c, statistics.median(v)) for c, v in out["pps"].items())
    out["median_pps"] = med
    out["ratio_8_vs_0"] = statistics.median(b / a for a, b in zip(out["pps"]["0"], out["pps"]["8"]))
    out["cpu_ratios"] = [b / a for a, b in zip(out["per_cpu_s"]["0"], out["per_cpu_s"]["8"])]
    out["cpu_ratio_8_vs_0"] = statistics.median(out["cpu_ratios"])
    out["ratio_0_vs_none"] = statistics.median(b / a for a, b in zip(out["pps"]["none"], out["pps"]["0"]))
    out["median_per_cpu_s"] = dict((c, statistics.median(v)) for c, v in out["per_cpu_s"].items())
    log("traffic: %.0f pps without a dispatcher, %.0f with 0 plugins, %.0f with 8; 8 vs 0: %.1f %% (per CPU "
        "second: %.1f %%); the "
        "dispatcher's time per packet in traffic: %.1f ns with 0 plugins, %.1f ns with 8 (%.1f ns per plugin)"
        % (med["none"], med["0"], med["8"], out["ratio_8_vs_0"] * 100.0, out["cpu_ratio_8_vs_0"] * 100.0,
           out["in_traffic"]["0"]["ns_per_run"],
           out["in_traffic"]["8"]["ns_per_run"], out["in_traffic"]["ns_per_plugin"]))
    return out


def summary(out):
    return {"traffic_pps_none": out["median_pps"]["none"], "traffic_pps_0": out["median_pps"]["0"],
            "traffic_pps_8": out["median_pps"]["8"], "traffic_ratio_8_vs_0": out["ratio_8_vs_0"],
            "traffic_cpu_ratio_8_vs_0": out["cpu_ratio_8_vs_0"],
            "traffic_ns_per_plugin_in_traffic": out["in_traffic"]["ns_per_plugin"]}
