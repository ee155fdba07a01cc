# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""freplace mode next to link mode, in one run of the stock-kernel VM.

This host's kernel refuses BPF_PROG_TYPE_EXT, so freplace runs in Debian's 6.1
kernel booted by tests/vm/run-in-vm (TCG here: no usable KVM). On the host,
every object is built with the collection's own code (dispatcher.prepare_link
and prepare_freplace on the engine's plugin records) and a plan is written;
inside the guest this file runs again with --guest, loads each variant with
libbpf only (an engine import costs ~15 s under TCG, clang ~14 s a run), times
it with BPF_PROG_TEST_RUN and writes the medians back through a shared
directory. Under emulation absolute ns mean nothing; the per-plugin slopes of
the two modes, measured alike in the same guest, are compared as a ratio.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUN_IN_VM = os.path.join(ROOT, "tests", "vm", "run-in-vm")
TC_ACT_OK = 0


# ------------------------------------------------------------------ host

def prepare(scratch, counts):
    """Build every object the guest loads; return the plan (paths stay valid in
    the guest: it sees this machine's filesystem read-only)."""
    from common import BPF_DIR, udp_packet
    from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod

    names = ["noop%02d" % i for i in range(max(counts))]
    variants = []
    with scratch.engine("vm") as eng:
        for name in names:
            eng.ensure_plugin(name, src=os.path.join(BPF_DIR, "noop.c"))
    # A run that recorded a change prunes, when it ends, what no dispatcher on
    # record uses: the objects are built in a run that records nothing.
    with scratch.engine("vm") as eng:
        plugins = eng.registry.plugins
        for n in counts:
            chain = {"pre": [[name, "noop"] for name in names[:n]], "post": []}
            linked, _used = disp_mod.prepare_link(eng.toolchain, eng.layout, "tc", chain, None, plugins)
            variants.append({"mode": "link", "plugins": n, "object": linked})
            disp_obj, extensions = disp_mod.prepare_freplace(eng.toolchain, eng.layout, "tc", chain, None, plugins)
            exts = [{"object": path, "programs": dict(("dp_ext_%s" % stub[3:], stub) for _p, _f, stub, _post in bindings)}
                    for _record, bindings, path in extensions]
            variants.append({"mode": "freplace", "plugins": n, "object": disp_obj, "extensions": exts})
    return {"packet_hex": udp_packet().hex(), "variants": variants}


def run(scratch, counts, repeat, runs, timeout):
    """Boot the VM once and time every variant there. Always returns a dict with
    'ran' (bool) and, when it did not run, 'reason'."""
    from common import fit_slope, log

    t0 = time.time()
    share = scratch.path("vm")
    os.makedirs(share, exist_ok=True)
    plan = prepare(scratch, counts)
    plan.update(repeat=repeat, runs=runs)
    with open(os.path.join(share, "plan.json"), "w") as handle:
        json.dump(plan, handle)
    result_path = os.path.join(share, "result.json")
    argv = [sys.executable, RUN_IN_VM, "--quiet", "--timeout", str(int(timeout)), "--rw", share, "--",
            sys.executable, os.path.abspath(__file__), "--guest", share]
    log("freplace vs link: booting the stock-kernel VM (%d variants)" % len(plan["variants"]))
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout + 60, check=False)
    except subprocess.TimeoutExpired:
        return {"ran": False, "reason": "the VM did not finish within %d s" % timeout, "seconds": time.time() - t0}
    if proc.returncode != 0 or not os.path.exists(result_path):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        return {"ran": False, "reason": "run-in-vm exited %d: %s" % (proc.returncode, tail), "seconds": time.time() - t0}
    with open(result_path) as handle:
        out = json.load(handle)
    out["ran"] = True
    out["seconds"] = time.time() - t0
    for mode in ("link", "freplace"):
        table = out[mode]
        xs = sorted(int(n) for n in table)
        slope, intercept = fit_slope(xs, [table[str(n)]["median_ns"] for n in xs])
        out[mode + "_fit"] = {"slope_ns": slope, "intercept_ns": intercept}
    out["freplace_over_link_per_plugin"] = out["freplace_fit"]["slope_ns"] / out["link_fit"]["slope_ns"]
    out["freplace_over_link_by_plugins"] = dict(
        (n, out["freplace"][n]["median_ns"] / out["link"][n]["median_ns"]) for n in out["link"])
    # Cost per added plugin between consecutive counts, each mode: a straight
    # line on real hardware, not necessarily under the emulator.
    xs = sorted(int(n) for n in out["link"])
    out["marginal"] = []
    for lo, hi in zip(xs, xs[1:]):
        step = dict((mode, (out[mode][str(hi)]["median_ns"] - out[mode][str(lo)]["median_ns"]) / float(hi - lo))
                    for mode in ("link", "freplace"))
        step.update({"from": lo, "to": hi, "ratio": step["freplace"] / step["link"] if step["link"] else None})
        out["marginal"].append(step)
    log("VM (%s, kernel %s, %.0f s): per plugin link %.1f ns, freplace %.1f ns (emulated ns); freplace/link %.2f"
        % (out["accel"], out["kernel"], out["seconds"], out["link_fit"]["slope_ns"], out["freplace_fit"]["slope_ns"],
           out["freplace_over_link_per_plugin"]))
    return out


# ----------------------------------------------------------------- guest

def _guest_libbpf():
    sys.path.insert(0, os.path.join(ROOT, "build"))
    from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
    return libbpf


def _guest_bpf_object():
    from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object  # after _guest_libbpf's path
    return bpf_object


def _time(libbpf, fd, pkt, repeat, runs):
    first = libbpf.prog_test_run(fd, pkt, repeat=100)
    if first.retval != TC_ACT_OK:
        raise RuntimeError("program returned %d, expected TC_ACT_OK" % first.retval)
    samples = [libbpf.prog_test_run(fd, pkt, repeat=repeat).duration_ns for _run in range(runs)]
    return {"median_ns": statistics.median(samples), "samples_ns": samples}


def _load_freplace(libbpf, variant, opened):
    disp = _guest_bpf_object().BpfObject.open_file(variant["object"], name="dp_dispatcher")
    opened.append(disp)
    disp.load()
    target = disp.program("dp_dispatcher").fd
    for ext in variant["extensions"]:
        obj = _guest_bpf_object().BpfObject.open_file(ext["object"], name="ext")
        opened.append(obj)
        for prog in obj.programs():
            if prog.name in ext["programs"]:
                prog.set_attach_target(target, ext["programs"][prog.name])
            else:
                prog.set_autoload(False)
        obj.load()
        for prog_name, stub in sorted(ext["programs"].items()):
            opened.append(obj.program(prog_name).attach_freplace(target, stub))
    return target


def guest_main(share):
    t0 = time.time()
    libbpf = _guest_libbpf()
    with open(os.path.join(share, "plan.json")) as handle:
        plan = json.load(handle)
    pkt = bytes.fromhex(plan["packet_hex"])
    with open("/proc/sys/net/core/bpf_jit_enable") as handle:
        jit = handle.read().strip()
    out = {"kernel": os.uname().release, "accel": os.environ.get("EBPF_DATAPATH_VM_ACCEL", "unknown"),
           "bpf_jit_enable": jit, "repeat": plan["repeat"], "runs": plan["runs"], "link": {}, "freplace": {}}
    for variant in plan["variants"]:
        opened = []
        try:
            if variant["mode"] == "link":
                obj = _guest_bpf_object().BpfObject.open_file(variant["object"], name="dp_dispatcher")
                opened.append(obj)
                obj.load()
                fd = obj.program("dp_dispatcher").fd
            else:
                fd = _load_freplace(libbpf, variant, opened)
            entry = _time(libbpf, fd, pkt, plan["repeat"], plan["runs"])
        finally:
            for thing in reversed(opened):
                thing.close()
        out[variant["mode"]][str(variant["plugins"])] = entry
        print("vm: %s, %d plugins: %.0f ns" % (variant["mode"], variant["plugins"], entry["median_ns"]), flush=True)
    out["guest_seconds"] = time.time() - t0
    tmp = os.path.join(share, "result.json.tmp")
    with open(tmp, "w") as handle:
        json.dump(out, handle)
    os.rename(tmp, os.path.join(share, "result.json"))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--guest", metavar="SHARE", required=True,
                        help="run the guest side on SHARE/plan.json (the host side is run by quick.py)")
    args = parser.parse_args(argv)
    return guest_main(args.guest)


if __name__ == "__main__":
    sys.exit(main())
