# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PNG plots of a results JSON, written next to it (benchmarks/results/<mode>-*.png).

Every point comes from the JSON; a section that did not run gets no plot.
Returns [(title, file name)] for report.py to link.
"""

import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def _series(table):
    xs = sorted(int(k) for k in table)
    return xs, [table[str(x)]["median_ns"] for x in xs]


def _save(fig, out_dir, name):
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    os.replace(path + ".tmp.png", path)
    return name


def packet_path(d, out_dir, prefix):
    pp = d["details"]["packet_path"]
    vm = d["details"].get("vm") or {}
    panels = 2 if vm.get("ran") else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.6), squeeze=False)
    ax = axes[0][0]
    for key, label, style in (("link", "link mode", "o-"), ("tailcall", "tail-call chain", "s--"),
                              ("inline", "inline build", "^-")):
        xs, ys = _series(pp[key])
        fit = pp[key + "_fit"]
        unit = "hop" if key == "tailcall" else "plugin"
        ax.plot(xs, ys, style, label="%s (%.2f ns per %s)" % (label, fit["slope_ns"], unit))
    ax.axhline(pp["direct"]["median_ns"], color="grey", linestyle=":", label="direct program")
    ax.set_xlabel("no-op plugins (tail calls: hops)")
    ax.set_ylabel("ns per packet (BPF_PROG_TEST_RUN, median)")
    ax.set_title("Packet path on %s" % d["machine"]["kernel"])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if panels == 2:
        ax = axes[0][1]
        counts = sorted(int(k) for k in vm["freplace_over_link_by_plugins"])
        ax.plot(counts, [vm["freplace_over_link_by_plugins"][str(n)] for n in counts], "o-",
                label="freplace / link, whole program")
        ax.axhline(vm["freplace_over_link_per_plugin"], color="C1", linestyle="--",
                   label="freplace / link per plugin (slopes): %.2f" % vm["freplace_over_link_per_plugin"])
        ax.axhline(1.0, color="grey", linestyle=":")
        ax.set_xlabel("no-op plugins")
        ax.set_ylabel("ratio (same VM run)")
        ax.set_title("freplace vs link, %s under %s" % (vm["kernel"], vm["accel"].upper()))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out_dir, prefix + "-packet-path.png")


def swaps(d, out_dir, prefix):
    runs = d["details"].get("swap") or {}
    if not runs:
        return None
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for backend, r in sorted(runs.items()):
        versions = range(len(r["packets_per_version"]))
        axes[0].plot(versions, r["packets_per_version"], drawstyle="steps-mid", label=backend)
        axes[1].plot(range(1, len(r["swap_ms"]) + 1), r["swap_ms"], ".", label=backend)
    axes[0].set_ylabel("packets seen with\nthis version's stamps")
    bad = sum(r["half_built"] + r["processed_twice"] + r["duplicated"] + r["lost"] for r in runs.values())
    axes[0].set_title("Swaps under load: %s" % (
        "every packet sent arrived once, stamped by one whole chain version" if not bad
        else "%d packets lost, duplicated or not stamped by one whole chain version" % bad))
    axes[1].set_ylabel("time of the change (ms)")
    axes[1].set_xlabel("chain version (0 = before the first change)")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out_dir, prefix + "-swaps.png")


def traffic(d, out_dir, prefix):
    tr = d["details"].get("traffic")
    if not tr:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    labels = {"none": "no program", "direct": "pass-through program", "0": "dispatcher, 0 plugins",
              "8": "dispatcher, 8 plugins (link)", "8i": "dispatcher, 8 plugins inline"}
    for key, ax, ylabel, title in (
            ("pps", axes[0], "thousand packets per second", "per second: 8 vs 0 plugins %.1f %%"
             % (tr["ratio_8_vs_0"] * 100.0)),
            ("per_cpu_s", axes[1], "thousand packets per CPU-second of the sender",
             "per CPU-second: 8 vs 0 plugins %.1f %%%s" % (
                 tr["cpu_ratio_8_vs_0"] * 100.0, "; 8 inline vs none %.1f %%" % (tr["cpu_ratio_8i_vs_none"] * 100.0)
                 if "cpu_ratio_8i_vs_none" in tr else ""))):
        for config in tr["configs"]:
            ax.plot(range(1, len(tr[key][config]) + 1), [v / 1000.0 for v in tr[key][config]], "o-",
                    label=labels.get(config, config))
        ax.set_xlabel("round")
        ax.set_ylabel(ylabel)
        ax.set_title("UDP through a veth, %s" % title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out_dir, prefix + "-traffic.png")


def write_all(d, out_dir):
    prefix = d["mode"]
    made = []
    for title, fn in (("Packet path: ns against the number of plugins", packet_path),
                      ("Traffic through a veth, round by round", traffic),
                      ("Swaps under load: packets per chain version, time per change", swaps)):
        name = fn(d, out_dir, prefix)
        if name:
            made.append((title, name))
    return made
