# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/arp_blacklist.yml (the role ebpf.datapath.arp_blacklist) through
real ansible-playbook runs against this host (local connection), with the
blacklist at XDP of the lab's interface b, real ARP requests sent from
namespace a, and the list of addresses taken from the inventory.

ARP requests are written by hand on a packet socket in namespace a, so their
sender protocol address (SPA) can be any address, and the replies are read on
the same socket: a request whose SPA is listed gets no reply and moves that
address's drop counter; any other request is answered by b's kernel.

The tests run in file order on one lab, each starting where the previous one
left it:

1. check mode on a fresh host predicts the plugin step, skips the rest and
   changes nothing;
2. the first run: listed senders dropped and counted, others answered;
3. a changed list in the inventory: only the map task changes; the plugin and
   dispatcher tasks are ok, the dispatcher keeps its generation and program
   (as recorded and as the kernel runs it); the traffic follows the new list;
4. the same list again: changed=0 on every task;
5. a hook another play binds at the dispatcher is kept by reruns;
6. check mode with diff shows the addresses added and removed, changes nothing;
7. an address that is not one fails the map step, the list untouched;
8. state=absent removes the dispatcher, the plugin and its pins;
9. compiled on the target instead: the same, then removed with its source.

Everything (namespaces, veth, pins, state and cache directories) is removed at
the end, whether the tests passed or not.
"""

import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import time

import pytest

from lab import Lab, remove_tree
from modrun import run_module

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps
from ansible_collections.ebpf.datapath.plugins.module_utils import bpffs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPFFS = "/sys/fs/bpf"
PLAYBOOK = os.path.join(ROOT, "playbooks", "arp_blacklist.yml")
HOST = "lab"
PLUGIN = "arp_blacklist"
ROLE = "ebpf.datapath.arp_blacklist : "
TASK_PLUGIN = ROLE + "Install or update the plugin (its maps are kept)"
TASK_MAP = ROLE + "Set the list of blacklisted sender addresses"
TASK_DISPATCHER = ROLE + "An XDP dispatcher per interface with the blacklist as main program"
TASK_SHOW = ROLE + "Show what changed and the drops per address"
ETH_P_ARP = 0x0806
PROBES = 3  # ARP requests per probe

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, BPF)")


# ---------------------------------------------------------------------------
# ARP on a packet socket
# ---------------------------------------------------------------------------

def _mac_bytes(text):
    return bytes.fromhex(text.replace(":", ""))


def arp_request(src_mac, sender_ip, target_ip):
    """A broadcast ARP request (IPv4 over Ethernet) claiming sender_ip."""
    eth = b"\xff" * 6 + src_mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src_mac + socket.inet_aton(sender_ip) \
        + b"\x00" * 6 + socket.inet_aton(target_ip)
    return eth + arp


def arp_replies(frames, sender_ip, target_ip):
    """How many frames are ARP replies from target_ip to sender_ip."""
    count = 0
    for frame in frames:
        if len(frame) < 42 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_ARP:
            continue
        op = struct.unpack_from("!H", frame, 20)[0]
        spa, tpa = frame[28:32], frame[38:42]
        if op == 2 and spa == socket.inet_aton(target_ip) and tpa == socket.inet_aton(sender_ip):
            count += 1
    return count


def arp_probe(lab, sender_ip, count=PROBES, wait=1.0):
    """Send ``count`` ARP requests from namespace a for b's address, claiming
    ``sender_ip``; return how many replies b sent back to it."""
    src_mac = _mac_bytes(lab.mac(lab.ns_a, lab.if_a))
    with lab.in_ns(lab.ns_a):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    frames = []
    try:
        sock.bind((lab.if_a, ETH_P_ARP))
        for _request in range(count):
            sock.send(arp_request(src_mac, sender_ip, lab.addr_b))
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                frames.append(sock.recv(2048))
            except socket.timeout:
                break
    finally:
        sock.close()
    return arp_replies(frames, sender_ip, lab.addr_b)


# ---------------------------------------------------------------------------
# ansible-playbook and what it printed
# ---------------------------------------------------------------------------

class Run:
    """One ansible-playbook run: exit status, output, the recap of the host,
    the outcome of each task (changed over ok over skipping, for loops) and
    the role's report as its debug task printed it."""

    RECAP = re.compile(r"^%s\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)"
                       % re.escape(HOST), re.M)
    STATUS = re.compile(r"^(ok|changed|skipping|fatal|failed): \[%s\]" % re.escape(HOST))
    RANK = {"skipping": 0, "ok": 1, "changed": 2, "failed": 3}

    def __init__(self, proc):
        self.rc, self.out = proc.returncode, proc.stdout + proc.stderr
        match = self.RECAP.search(proc.stdout)
        self.recap = dict(zip(("ok", "changed", "unreachable", "failed", "skipped"),
                              map(int, match.groups()))) if match else None
        self.tasks, task = {}, None
        for line in proc.stdout.splitlines():
            if line.startswith("TASK ["):
                task = line[len("TASK ["):line.rindex("]")]
                continue
            status = self.STATUS.match(line)
            if status and task is not None:
                word = "failed" if status.group(1) == "fatal" else status.group(1)
                old = self.tasks.get(task)
                if old is None or self.RANK[word] > self.RANK[old]:
                    self.tasks[task] = word
        self.report = self._report(proc.stdout)

    @staticmethod
    def _report(stdout):
        """The dict the role's debug task printed (its msg), or None."""
        head = "TASK [%s]" % TASK_SHOW
        if head not in stdout:
            return None
        section = stdout.split(head, 1)[1]
        start = section.index("ok: [%s] => " % HOST) + len("ok: [%s] => " % HOST)
        end = section.index("\n}\n", start) + 2
        return json.loads(section[start:end])["msg"]

    def __str__(self):
        return self.out[-12000:]


class Play:
    """The playbook against this host, with the test's roots and caches."""

    def __init__(self, lab, work, bpffs_root):
        self.lab, self.work, self.bpffs_root = lab, work, bpffs_root
        self.state_dir = os.path.join(work, "state")
        self.dispatcher = "arp_blacklist-%s-%s" % (lab.ns_b, lab.if_b)
        self.runs = 0

    def addr(self, last):
        """An address of the lab's subnet that no interface has."""
        return "10.199.%d.%d" % (self.lab.net, last)

    def run(self, addresses, *options, **more_vars):
        """ansible-playbook playbooks/arp_blacklist.yml with an inventory whose
        host variables list ``addresses``."""
        self.runs += 1
        host = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "ansible_become": False,  # already root; sudo may not be installed
            "arp_blacklist_addresses": list(addresses),
            "arp_blacklist_interfaces": [{"interface": self.lab.if_b, "netns": self.lab.ns_b}],
            "arp_blacklist_install_deps": False,
            "arp_blacklist_bpffs_root": self.bpffs_root,
            "arp_blacklist_state_dir": self.state_dir,
            "arp_blacklist_code_dir": os.path.join(self.work, "code"),
        }
        host.update(more_vars)
        inventory = os.path.join(self.work, "inventory-%d.json" % self.runs)
        with open(inventory, "w") as handle:
            json.dump({"all": {"children": {"datapath": {"hosts": {HOST: host}}}}}, handle, indent=1)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="default",
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.work, "ansible-local"),
                   ANSIBLE_REMOTE_TMP=os.path.join(self.work, "ansible-remote"),
                   EBPF_DATAPATH_CONTROLLER_CACHE_DIR=os.path.join(self.work, "controller-cache"),
                   EBPF_DATAPATH_CACHE_DIR=os.path.join(self.work, "target-cache"))
        started = time.monotonic()
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                               "-i", inventory, PLAYBOOK] + list(options),
                              capture_output=True, text=True, env=env, timeout=600, check=False)
        print("[arp_blacklist] ansible-playbook %s: %.1f s" % (" ".join(options), time.monotonic() - started))
        return Run(proc)

    # -- the host, read without the role -----------------------------------------

    def module(self, module_name, **args):
        return run_module(module_name, dict(args, bpffs_root=self.bpffs_root, state_dir=self.state_dir))

    def dispatcher_facts(self):
        """(generation, prog_id) as the registry and the kernel report them."""
        (disp,) = [d for d in self.module("datapath_info")["dispatchers"] if d["name"] == self.dispatcher]
        assert disp["attached"], disp
        return disp["generation"], disp["prog_id"]

    def kernel_xdp_prog(self):
        """Id of the XDP program the kernel runs on interface b, or None."""
        out = subprocess.run(["ip", "-n", self.lab.ns_b, "link", "show", "dev", self.lab.if_b],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        match = re.search(r"prog/xdp id (\d+)", out)
        return int(match.group(1)) if match else None

    def pin(self, name):
        return os.path.join(self.bpffs_root, "plugins", PLUGIN, "maps", name)

    def listed(self):
        """The addresses in the pinned list, read with libbpf."""
        fd = libbpf.obj_get(self.pin("arp_blacklist"))
        try:
            return sorted(socket.inet_ntoa(k) for k in bpf_maps.map_keys(fd, 4))
        finally:
            libbpf.close_fd(fd)

    def drops(self, address):
        """ARP packets dropped from address, summed over CPUs, read with libbpf."""
        fd = libbpf.obj_get(self.pin("arp_drops"))
        try:
            values = bpf_maps.map_lookup_percpu(fd, socket.inet_aton(address), 8)
        finally:
            libbpf.close_fd(fd)
        return sum(struct.unpack("<Q", v)[0] for v in values) if values else 0


@pytest.fixture(scope="module")
def play(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("arp_blacklist"))
    bpffs.ensure_bpffs(BPFFS)
    bpffs_root = os.path.join(BPFFS, "dpt-arp-" + secrets.token_hex(4))
    lab = Lab()
    try:
        lab.setup()
        os.mkdir(bpffs_root, 0o700)
        yield Play(lab, work, bpffs_root)
    finally:
        errors = []
        for step in (lab.close, lambda: remove_tree(bpffs_root)):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - clean everything, then report
                errors.append(str(exc))
        shutil.rmtree(work, ignore_errors=True)
        assert not errors, errors


def assert_answers(play, dropped=(), answered=()):
    """Each address in dropped gets no reply and its counter moves by PROBES;
    each in answered gets every reply and its counter stays."""
    for address in dropped:
        before = play.drops(address)
        assert arp_probe(play.lab, address) == 0, "ARP from listed %s was answered" % address
        assert play.drops(address) - before == PROBES, address
    for address in answered:
        before = play.drops(address)
        assert arp_probe(play.lab, address) == PROBES, "ARP from %s was not answered" % address
        assert play.drops(address) == before, address


# ---------------------------------------------------------------------------
# The tests, in order
# ---------------------------------------------------------------------------

def test_check_mode_on_a_fresh_host_predicts_the_plugin_and_changes_nothing(play):
    run = play.run([play.addr(66)], "--check", "--diff")
    assert run.rc == 0, str(run)
    assert run.tasks[TASK_PLUGIN] == "changed", run.tasks
    assert run.tasks[TASK_MAP] == "skipping" and run.tasks[TASK_DISPATCHER] == "skipping", run.tasks
    assert run.report["arp_blacklist_report"]["entries"] is None, run.report
    assert not os.path.exists(os.path.join(play.bpffs_root, "plugins"))
    assert play.kernel_xdp_prog() is None
    assert not os.path.exists(os.path.join(play.state_dir, "registry.json"))


def test_listed_senders_are_dropped_and_counted_others_answered(play):
    x, y, z = play.addr(66), play.addr(67), play.addr(77)
    run = play.run([x, y])
    assert run.rc == 0, str(run)
    assert run.tasks[TASK_PLUGIN] == "changed" and run.tasks[TASK_MAP] == "changed", run.tasks
    assert run.tasks[TASK_DISPATCHER] == "changed", run.tasks
    report = run.report["arp_blacklist_report"]
    assert (report["entries"], report["added"], report["removed"]) == (2, 2, 0), report
    assert report["dispatchers"] == {play.dispatcher: 1} and report["dispatchers_changed"] == [play.dispatcher]
    assert play.listed() == sorted([x, y])
    assert play.kernel_xdp_prog() == play.dispatcher_facts()[1]

    assert_answers(play, dropped=[x, y], answered=[z])
    # The lab's own neighbours resolve: a's address is not listed.
    assert play.lab.ping(play.lab.ns_a, play.lab.addr_b) == 3


def test_a_changed_list_changes_map_entries_only(play):
    x, y, z = play.addr(66), play.addr(67), play.addr(77)
    generation, prog_id = play.dispatcher_facts()
    kernel_prog = play.kernel_xdp_prog()
    dropped_x = play.drops(x)
    assert dropped_x >= PROBES

    run = play.run([y, z])
    assert run.rc == 0, str(run)
    assert run.tasks[TASK_PLUGIN] == "ok", run.tasks
    assert run.tasks[TASK_DISPATCHER] == "ok", run.tasks
    assert run.tasks[TASK_MAP] == "changed", run.tasks
    assert run.recap["changed"] == 1, run.recap
    report = run.report["arp_blacklist_report"]
    assert (report["entries"], report["added"], report["removed"]) == (2, 1, 1), report
    assert report["plugin"] == "unchanged" and report["dispatchers_changed"] == [], report
    # No rebuild, no swap: the same generation and the same program, for the
    # registry and for the kernel.
    assert play.dispatcher_facts() == (generation, prog_id)
    assert play.kernel_xdp_prog() == kernel_prog == prog_id
    assert play.listed() == sorted([y, z])

    assert_answers(play, dropped=[y, z], answered=[x])
    assert play.drops(x) == dropped_x  # off the list, its count is kept
    drops = run.report["arp_blacklist_drops"]
    assert drops[x] == dropped_x, drops


def test_the_same_list_again_changes_nothing(play):
    y, z = play.addr(67), play.addr(77)
    state = play.dispatcher_facts()
    run = play.run([z, y, z])  # order and repeats do not matter
    assert run.rc == 0, str(run)
    assert run.recap["changed"] == 0 and run.recap["failed"] == 0, run.recap
    assert "changed" not in run.tasks.values(), run.tasks
    assert run.tasks[TASK_MAP] == "ok" and run.tasks[TASK_PLUGIN] == "ok", run.tasks
    assert play.dispatcher_facts() == state
    report = run.report["arp_blacklist_report"]
    assert report["entries"] == 2 and report["added"] == report["removed"] == 0, report
    assert run.report["arp_blacklist_drops"][z] == play.drops(z)


def test_a_hook_bound_by_another_play_is_kept(play):
    """A packet counter as a pre hook at the role's dispatcher (bound with
    datapath_hook, a rebuild): reruns of the role keep it and change nothing."""
    y = play.addr(67)
    play.module("datapath_plugin", name="arpcount", src=os.path.join(ROOT, "bpf", "testdata", "counter.c"))
    bound = play.module("datapath_hook", dispatcher=play.dispatcher, plugin="arpcount", function="count_xdp")
    assert bound["changed"]
    state = play.dispatcher_facts()

    run = play.run([y, play.addr(77)])
    assert run.rc == 0, str(run)
    assert run.recap["changed"] == 0, run.recap
    assert play.dispatcher_facts() == state
    counts = os.path.join(play.bpffs_root, "plugins", "arpcount", "maps", "counts")
    fd = libbpf.obj_get(counts)
    try:
        before = struct.unpack("<Q", bpf_maps.map_lookup(fd, struct.pack("<I", 0), 8))[0]
        assert_answers(play, dropped=[y])  # main still decides
        after = struct.unpack("<Q", bpf_maps.map_lookup(fd, struct.pack("<I", 0), 8))[0]
    finally:
        libbpf.close_fd(fd)
    assert after - before >= PROBES  # and the pre hook ran before it


def test_check_mode_shows_the_diff_and_changes_nothing(play):
    y, z, w = play.addr(67), play.addr(77), play.addr(78)
    state = play.dispatcher_facts()
    run = play.run([z, w], "--check", "--diff")
    assert run.rc == 0, str(run)
    assert run.tasks[TASK_MAP] == "changed", run.tasks
    assert run.tasks[TASK_PLUGIN] == "ok" and run.tasks[TASK_DISPATCHER] == "ok", run.tasks
    assert run.recap["changed"] == 1, run.recap
    assert '+ "%s": true' % w in run.out and '- "%s": true' % y in run.out, str(run)
    assert '"%s"' % z not in run.out.split("TASK [%s]" % TASK_MAP, 1)[1].split("TASK [", 1)[0]
    report = run.report["arp_blacklist_report"]
    assert (report["entries"], report["added"], report["removed"]) == (2, 1, 1), report
    # Nothing changed: the list, the dispatcher, the traffic.
    assert play.listed() == sorted([y, z])
    assert play.dispatcher_facts() == state
    assert_answers(play, dropped=[y], answered=[w])


def test_a_bad_address_fails_the_map_step_with_the_list_untouched(play):
    y, z = play.addr(67), play.addr(77)
    bad = "10.199.%d.300" % play.lab.net
    state = play.dispatcher_facts()
    run = play.run([z, bad])
    assert run.rc != 0 and run.tasks[TASK_MAP] == "failed", str(run)
    assert bad in run.out and "not an IPv4 address" in run.out, str(run)
    assert play.listed() == sorted([y, z])
    assert play.dispatcher_facts() == state


def test_absent_removes_the_dispatcher_and_the_plugin(play):
    z = play.addr(77)
    run = play.run([z], arp_blacklist_state="absent")
    assert run.rc == 0, str(run)
    assert play.kernel_xdp_prog() is None
    assert [d["name"] for d in play.module("datapath_info")["dispatchers"]] == []
    assert not os.path.exists(os.path.join(play.bpffs_root, "plugins", PLUGIN))
    assert arp_probe(play.lab, z) == PROBES
    again = play.run([z], arp_blacklist_state="absent")
    assert again.rc == 0 and again.recap["changed"] == 0, str(again)


def test_compiled_on_the_target_the_same(play):
    """arp_blacklist_compile_on=target: the source is shipped, the host compiles
    it; same drops, a rerun changes nothing, absent removes the shipped source."""
    x, z = play.addr(66), play.addr(77)
    code = os.path.join(play.work, "code", "arp_blacklist.c")
    run = play.run([x], arp_blacklist_compile_on="target")
    assert run.rc == 0 and run.tasks[TASK_PLUGIN] == "changed", str(run)
    assert os.path.isfile(code)
    assert_answers(play, dropped=[x], answered=[z])
    again = play.run([x], arp_blacklist_compile_on="target")
    assert again.rc == 0 and again.recap["changed"] == 0, str(again)
    gone = play.run([x], arp_blacklist_state="absent", arp_blacklist_compile_on="target")
    assert gone.rc == 0 and not os.path.exists(os.path.dirname(code)), str(gone)
    assert play.kernel_xdp_prog() is None
