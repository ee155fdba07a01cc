# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A simulated fleet on this machine: one "router" network namespace and N
host namespaces, each host joined to the router by its own veth pair::

    netns dpt<tag>r (router)                     netns dpt<tag>hNN (host NN)
    dpt<tag>rNN 10.198.NN.1/24  <-- veth -->  dpt<tag>hNN 10.198.NN.2/24

Each host is an inventory host reached with the local connection, with its
own bpffs_root (/sys/fs/bpf/dpt-<tag>/hNN) and state_dir, so the collection
treats them as separate machines. Traffic from the router to a host enters
the host's interface: that is where the dispatchers sit (tc ingress).

Needs root. close() removes every namespace, veth and pin, also after a
failure; use the Fleet as a context manager.
"""

import json
import os
import shutil
import sys

from lab import Lab, remove_tree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPFFS = "/sys/fs/bpf"


TESTDATA = os.path.join(ROOT, "bpf", "testdata")
# The chain the rollout tests and benchmarks/fleet.py roll out: count_b
# (counter_twin.c) then drop (dropper.c, drops UDP to port 7777).
CHAIN_B = {
    "datapath_rollout_plugins": [
        {"name": "count_b", "src": os.path.join(TESTDATA, "counter_twin.c")},
        {"name": "drop", "src": os.path.join(TESTDATA, "dropper.c")},
    ],
    "datapath_rollout_hooks": [
        {"plugin": "count_b", "function": "count", "constraints": [{"anchor": "before", "plugin": "drop"}]},
        {"plugin": "drop", "function": "drop_port"},
    ],
    "datapath_rollout_probe_counter": {"plugin": "count_b", "map": "counts", "key": "0"},
}
DROP_PORT = 7777  # what dropper.c drops


class Host:
    """One simulated host: its namespace, interface, address and collection roots."""

    def __init__(self, fleet, number):
        self.number = number
        self.name = "h%02d" % number
        self.netns = fleet.lab.name(self.name)
        self.ifname = self.netns  # interface names live in the namespace: no clash
        self.router_if = fleet.lab.name("r%02d" % number)
        self.addr = "10.198.%d.2" % number
        self.router_addr = "10.198.%d.1" % number
        self.bpffs_root = os.path.join(fleet.bpffs_top, self.name)
        self.state_dir = os.path.join(fleet.work_dir, "state", self.name)
        self.dispatcher = "%s-in" % self.name

    def map_pin(self, plugin, map_name):
        return os.path.join(self.bpffs_root, "plugins", plugin, "maps", map_name)


class Fleet:
    """``size`` simulated hosts under ``work_dir`` (state dirs, inventory)."""

    def __init__(self, size, work_dir):
        if not 1 <= size <= 250:
            raise ValueError("a fleet has 1 to 250 hosts")
        self.lab = Lab()
        self.size = size
        self.work_dir = work_dir
        self.bpffs_top = os.path.join(BPFFS, "dpt-fleet-" + self.lab.tag)
        self.router = None
        self.hosts = []

    def setup(self):
        try:
            os.makedirs(self.bpffs_top, mode=0o700)
            self.router = self.lab.add_namespace("r")
            for number in range(1, self.size + 1):
                host = Host(self, number)
                self.lab.add_namespace(host.name)
                self.lab.add_veth(self.router, host.router_if, host.netns, host.ifname)
                self.lab.add_address(self.router, host.router_if, host.router_addr, 24)
                self.lab.add_address(host.netns, host.ifname, host.addr, 24)
                self.hosts.append(host)
            for host in self.hosts:
                self.lab.wait_up(self.router, host.router_if)
                self.lab.wait_up(host.netns, host.ifname)
        except BaseException:
            try:
                self.close()
            except Exception:  # noqa: BLE001 - the setup error is the one to report
                pass
            raise
        return self

    def host(self, name):
        return next(h for h in self.hosts if h.name == name)

    # -- traffic and counters ---------------------------------------------------

    def send(self, host, count, port=9999):
        """``count`` UDP datagrams from the router into ``host``'s interface."""
        return self.lab.send_udp(self.router, host.addr, port, count)

    def counter(self, host, plugin, map_name="counts", key=0):
        """A map entry of a plugin on the host, read from its pin (0 when the
        plugin or its pin is not there)."""
        from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned
        path = host.map_pin(plugin, map_name)
        if not os.path.exists(path):
            return 0
        return read_pinned(path).get(key, 0)

    def probe_argv(self, host, count=3):
        """The gate's probe command for a host: a few pings from the router."""
        return ["ip", "netns", "exec", self.router, "ping", "-q", "-c", str(count), "-i", "0.05", "-W", "1",
                host.addr]

    # -- inventory --------------------------------------------------------------

    def write_inventory(self, path, host_vars=None, group="datapath"):
        """An inventory (JSON is YAML) of every host with the local connection,
        the venv's python (it has pyroute2) and the host's own roots and
        dispatcher. ``host_vars``: {host name: {extra vars}}."""
        hosts = {}
        for host in self.hosts:
            entry = {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                # Already root: no sudo (which may not be installed) for become.
                "ansible_become": False,
                "datapath_rollout_bpffs_root": host.bpffs_root,
                "datapath_rollout_state_dir": host.state_dir,
                "datapath_rollout_dispatchers": [{
                    "name": host.dispatcher, "attach": "tc_ingress", "interface": host.ifname,
                    "netns": host.netns}],
                "datapath_rollout_probe_argv": self.probe_argv(host),
            }
            entry.update((host_vars or {}).get(host.name, {}))
            hosts[host.name] = entry
        with open(path, "w") as handle:
            json.dump({"all": {"children": {group: {"hosts": hosts}}}}, handle, indent=1)
        return path

    # -- teardown ---------------------------------------------------------------

    def unpin_all(self):
        """What a reboot does to the collection's bpffs entries: every host's
        bpffs_root is gone (its pinned links go with it, so the dispatchers
        detach)."""
        for host in self.hosts:
            remove_tree(host.bpffs_root)

    def close(self):
        """Remove the namespaces (and veths), every pin and the state dirs."""
        errors = []
        try:
            self.lab.close()
        except Exception as exc:  # noqa: BLE001 - keep cleaning, report at the end
            errors.append(str(exc))
        try:
            remove_tree(self.bpffs_top)
        except OSError as exc:
            errors.append("bpffs %s: %s" % (self.bpffs_top, exc))
        shutil.rmtree(os.path.join(self.work_dir, "state"), ignore_errors=True)
        if errors:
            raise RuntimeError("fleet teardown incomplete: %s" % "; ".join(errors))

    def __enter__(self):
        return self.setup()

    def __exit__(self, *exc):
        self.close()
        return False
