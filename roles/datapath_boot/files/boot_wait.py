# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait, within a bound, for the interfaces the recorded dispatchers sit on.

    python3 -m datapath_boot_wait --timeout SECONDS ARGS_FILE

The boot unit runs this before datapath_restore (ExecStartPre): at boot an
interface may appear after the unit is due (a slow driver, a namespace or a
veth made by another unit), and a restore that ran first would leave that
dispatcher out. ARGS_FILE is the unit's argument file; its ``state_dir`` names
the registry, whose dispatchers name their ``interface`` and ``netns``.

Every second it looks for the missing ones (pyroute2, in each namespace);
it returns as soon as all exist, or after SECONDS with a warning naming the
ones still missing, and the restore then brings back every chain it can and
fails on the others (the unit fails and the journal says which). Only reads.
"""

import argparse
import json
import os
import sys
import time

REGISTRY = "registry.json"
NETNS_DIR = "/run/netns"


def say(msg):
    sys.stdout.write("datapath_boot_wait: %s\n" % msg)
    sys.stdout.flush()


def wanted_interfaces(state_dir):
    """Sorted (netns or "", interface) pairs of the recorded dispatchers."""
    try:
        with open(os.path.join(state_dir, REGISTRY), "rb") as handle:
            registry = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        say("no registry to read (%s): nothing to wait for" % exc)
        return []
    dispatchers = registry.get("dispatchers") if isinstance(registry, dict) else None
    if isinstance(dispatchers, dict):
        dispatchers = list(dispatchers.values())
    found = set()
    for disp in dispatchers or []:
        if isinstance(disp, dict) and disp.get("interface"):
            found.add((disp.get("netns") or "", disp["interface"]))
    return sorted(found)


def present(netns, interface):
    """True when interface exists in netns ("" is this namespace)."""
    from pyroute2 import IPRoute
    from pyroute2.netns import popns, pushns
    if netns and not os.path.exists(os.path.join(NETNS_DIR, netns)):
        return False
    if netns:
        pushns(netns)
    try:
        with IPRoute() as ipr:
            return bool(ipr.link_lookup(ifname=interface))
    finally:
        if netns:
            popns()


def name(netns, interface):
    return "%s (netns %s)" % (interface, netns) if netns else interface


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait at most")
    parser.add_argument("args_file", help="the boot unit's argument file (ANSIBLE_MODULE_ARGS with state_dir)")
    opts = parser.parse_args(argv)
    with open(opts.args_file, "rb") as handle:
        state_dir = json.loads(handle.read().decode("utf-8"))["ANSIBLE_MODULE_ARGS"]["state_dir"]
    wanted = wanted_interfaces(state_dir)
    t0 = time.monotonic()
    missing = [w for w in wanted if not present(*w)]
    if missing:
        say("waiting up to %g s for %s" % (opts.timeout, ", ".join(name(*w) for w in missing)))
    while missing and time.monotonic() - t0 < opts.timeout:
        time.sleep(1.0)
        missing = [w for w in missing if not present(*w)]
    waited = time.monotonic() - t0
    if missing:
        say("still missing after %.1f s: %s; restoring the other dispatchers"
            % (waited, ", ".join(name(*w) for w in missing)))
    else:
        say("all %d interfaces present after %.1f s: %s" % (len(wanted), waited, ", ".join(name(*w) for w in wanted)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
