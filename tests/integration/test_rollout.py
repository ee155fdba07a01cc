# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rollout.yml on a simulated fleet of 20 hosts (tests/fleet.py):
network namespaces on this machine, each with its own veth, bpffs_root and
state_dir, reached with the local connection; real ansible-playbook, real
packets.

The tests run in file order on one fleet, each starting from where the
previous one left it (every host starts on chain A, generation 1):

1. a rollout A -> B where one host fails its health gate: that host is
   rolled back to A, the rollout stops (later batches untouched) and the
   summary names the host;
2. (the hosts that got B step back to A) the rollout A -> B: canary, batches
   of 5, every host on B, B's plugins count the traffic and A's do not;
3. rollback to the previous generation under a steady UDP stream loses no
   packet (sequence numbers checked at the receiver);
4. a simulated reboot (every host's bpffs_root removed) then the boot unit's
   own ExecStart brings every chain back, and a rerun of the playbook
   changes nothing on any host.

Chain A: count_a (bpf/testdata/counter.c). Chain B: count_b
(bpf/testdata/counter_twin.c) then drop (bpf/testdata/dropper.c, drops UDP to
port 7777). One compile cache for every host, so clang runs once per source.
"""

import concurrent.futures
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from fleet import CHAIN_B, DROP_PORT, Fleet
from modrun import run_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PLAYBOOK = os.path.join(ROOT, "playbooks", "rollout.yml")
TESTDATA = os.path.join(ROOT, "bpf", "testdata")
SIZE = 20
CANARY_AND_BATCHES = [["h01"], ["h02", "h03", "h04", "h05", "h06"], ["h07", "h08", "h09", "h10", "h11"],
                      ["h12", "h13", "h14", "h15", "h16"], ["h17", "h18", "h19", "h20"]]
ROLLOUT_PLAY = "Roll the chain out - canary first, then batches"

CHAIN_A_HOOKS = [{"plugin": "count_a", "function": "count"}]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, BPF)")


def timed(label, started):
    print("[rollout] %s: %.1f s" % (label, time.monotonic() - started))


def in_parallel(fn, items, workers=4):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


class Run:
    """One ansible-playbook run: output, exit status, recap and summary."""

    RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+"
                       r"skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.M)

    def __init__(self, proc, summary_file):
        self.rc, self.out = proc.returncode, proc.stdout + proc.stderr
        fields = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
        self.recap = dict((m.group(1), dict(zip(fields, map(int, m.groups()[1:]))))
                          for m in self.RECAP.finditer(proc.stdout))
        with open(summary_file) as handle:
            self.summary = json.load(handle)

    def batches(self):
        """Hosts of each batch of the rollout play, in order (ansible prints the
        play's header again for every serial batch)."""
        chunks = self.out.split("PLAY [%s]" % ROLLOUT_PLAY)[1:]
        chunks[-1] = chunks[-1].split("PLAY RECAP")[0]
        return [sorted(set(re.findall(r"\[(h\d\d)[\]\s]", chunk))) for chunk in chunks]

    def __str__(self):
        return self.out[-12000:]


class Rollout:
    """The fleet, its inventory and the way to run the playbook on it."""

    def __init__(self, fleet, work):
        self.fleet, self.work = fleet, work
        self.units = os.path.join(work, "units")
        os.makedirs(self.units)
        self.common = {
            "datapath_rollout_summary_file": os.path.join(work, "summary.json"),
            "datapath_boot_unit_dir": self.units,
            "datapath_boot_config_dir": os.path.join(work, "etc"),
            "datapath_boot_code_dir": os.path.join(work, "lib"),
            "datapath_boot_controller_dir": os.path.join(work, "boot-build"),
            # The boot units share the test's compile cache, like the playbook runs.
            "datapath_boot_environment": {"EBPF_DATAPATH_CACHE_DIR": os.environ["EBPF_DATAPATH_CACHE_DIR"]},
        }

    def host_vars(self, extra=None):
        out = dict((h.name, {"datapath_boot_unit_name": "dpt-restore-" + h.name}) for h in self.fleet.hosts)
        for name, values in (extra or {}).items():
            out[name].update(values)
        return out

    def play(self, chain, host_vars=None, caches=None, **extra_vars):
        """caches: (controller cache, targets' cache) for this run, else the
        test's shared compile cache for both."""
        inventory = self.fleet.write_inventory(os.path.join(self.work, "inventory.json"), self.host_vars(host_vars))
        extra = dict(self.common, **chain)
        extra.update(extra_vars)
        extra_file = os.path.join(self.work, "extra.json")
        with open(extra_file, "w") as handle:
            json.dump(extra, handle)
        env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ["PATH"],
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "build"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.work, "ansible-local"),
                   ANSIBLE_REMOTE_TMP=os.path.join(self.work, "ansible-remote"))
        if caches:
            env.update(EBPF_DATAPATH_CONTROLLER_CACHE_DIR=caches[0], EBPF_DATAPATH_CACHE_DIR=caches[1])
        if os.path.exists(extra["datapath_rollout_summary_file"]):
            os.unlink(extra["datapath_rollout_summary_file"])
        started = time.monotonic()
        proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "--forks", "5",
                               "-e", "@" + extra_file, PLAYBOOK],
                              capture_output=True, text=True, env=env, timeout=900, check=False)
        timed("ansible-playbook (%s)" % ", ".join(p["name"] for p in chain["datapath_rollout_plugins"]), started)
        return Run(proc, extra["datapath_rollout_summary_file"])

    # -- direct module runs (set-up steps that are not under test) --------------

    @staticmethod
    def module(host, module_name, **args):
        args.update(bpffs_root=host.bpffs_root, state_dir=host.state_dir)
        return run_module(module_name, args)

    def apply_chain_a(self, host):
        self.module(host, "datapath_plugin", name="count_a", src=os.path.join(TESTDATA, "counter.c"))
        return self.module(host, "dispatcher", name=host.dispatcher, attach="tc_ingress", interface=host.ifname,
                           netns=host.netns, plugins=CHAIN_A_HOOKS)

    # -- traffic ------------------------------------------------------------------

    def counts(self, hosts, plugins=("count_a", "count_b")):
        return dict((h.name, dict((p, self.fleet.counter(h, p)) for p in plugins)) for h in hosts)

    def traffic(self, hosts, udp=20, blocked=5):
        """Send ``udp`` datagrams to an open port and ``blocked`` to the port
        chain B drops into every host; return what each counter counted
        meanwhile: {host: {count_a, count_b, dropped}}."""
        plugins = ("count_a", "count_b")
        before = self.counts(hosts, plugins)
        dropped_before = dict((h.name, self.fleet.counter(h, "drop", "dropped")) for h in hosts)
        for host in hosts:
            self.fleet.send(host, udp, port=9999)
            self.fleet.send(host, blocked, port=DROP_PORT)
        after = self.counts(hosts, plugins)
        out = {}
        for host in hosts:
            delta = dict((p, after[host.name][p] - before[host.name][p]) for p in plugins)
            delta["dropped"] = self.fleet.counter(host, "drop", "dropped") - dropped_before[host.name]
            out[host.name] = delta
        return out


def assert_on_b(deltas, names, udp=20, blocked=5):
    for name in names:
        d = deltas[name]
        assert d["count_b"] >= udp + blocked and d["count_a"] == 0 and d["dropped"] == blocked, \
            "%s should run chain B (count_b counts, drop drops port %d, count_a idle): %s" % (name, DROP_PORT, d)


def assert_on_a(deltas, names, udp=20, blocked=5):
    for name in names:
        d = deltas[name]
        assert d["count_a"] >= udp + blocked and d["count_b"] == 0 and d["dropped"] == 0, \
            "%s should run chain A (count_a counts, count_b and drop idle): %s" % (name, d)


@pytest.fixture(scope="module")
def rollout(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("rollout"))
    started = time.monotonic()
    fleet = Fleet(SIZE, work)
    fleet.setup()
    try:
        timed("fleet of %d hosts" % SIZE, started)
        ctx = Rollout(fleet, work)
        started = time.monotonic()
        results = in_parallel(ctx.apply_chain_a, fleet.hosts)
        assert all(r["generation"] == 1 for r in results)
        timed("chain A on every host (modules run directly)", started)
        yield ctx
    finally:
        fleet.close()
        shutil.rmtree(work, ignore_errors=True)


def test_failed_gate_rolls_back_and_stops_the_rollout(rollout):
    fleet = rollout.fleet
    assert_on_a(rollout.traffic(fleet.hosts), [h.name for h in fleet.hosts])

    # h04 (second batch) fails the operator's check; 1 of 5 is 20% > 10%.
    run = rollout.play(CHAIN_B, host_vars={"h04": {"datapath_rollout_check_argv": ["false"]}},
                       datapath_rollout_ship_code=True, datapath_rollout_code_dir=os.path.join(rollout.work, "code"),
                       datapath_rollout_max_fail_percentage=10, datapath_rollout_boot=False)
    assert run.rc != 0, str(run)
    assert run.batches() == CANARY_AND_BATCHES[:2], "the rollout must stop after the failing batch\n%s" % run
    assert run.recap["h04"]["failed"] == 1 and run.recap["h04"]["rescued"] == 1, run.recap

    summary = run.summary
    assert summary["rollout"] == "stopped" and summary["stopped_by"] == ["h04"], summary
    h04 = summary["hosts"]["h04"]
    assert h04["status"] == "rolled_back" and "operator's check" in h04["reason"], h04
    assert h04["dispatchers"][0]["chain"].startswith("pre: count_a.count"), h04
    updated = ["h01", "h02", "h03", "h05", "h06"]
    untouched = [h.name for h in fleet.hosts if h.name not in updated + ["h04"]]
    assert [n for n in updated if summary["hosts"][n]["status"] != "updated"] == [], summary
    assert [n for n in untouched if summary["hosts"][n]["status"] != "not_reached"] == [], summary
    assert [n for n in untouched if summary["hosts"][n]["dispatchers"][0]["generation"] != 1] == [], summary

    deltas = rollout.traffic(fleet.hosts)
    assert_on_b(deltas, updated)
    assert_on_a(deltas, ["h04"] + untouched)


def test_rollout_a_to_b_canary_then_batches(rollout):
    fleet = rollout.fleet
    # The hosts the stopped rollout above left on B step back to A (generation 1).
    on_b = [h for h in fleet.hosts if rollout.traffic([h], udp=1, blocked=0)[h.name]["count_b"]]
    for host in on_b:
        assert rollout.module(host, "datapath_rollback", dispatcher=host.dispatcher, generation=1)["changed"]
    assert_on_a(rollout.traffic(fleet.hosts), [h.name for h in fleet.hosts])

    # Cold caches, one for the controller and one all 20 targets share: where
    # clang runs is read from them afterwards.
    caches = (os.path.join(rollout.work, "controller-cache"), os.path.join(rollout.work, "targets-cache"))
    started = time.monotonic()
    run = rollout.play(CHAIN_B, caches=caches, datapath_rollout_code_dir=os.path.join(rollout.work, "code"))
    wall = time.monotonic() - started
    assert run.rc == 0, str(run)
    assert run.batches() == CANARY_AND_BATCHES, str(run)
    assert sorted(run.recap) == [h.name for h in fleet.hosts]
    assert all(r["failed"] == 0 and r["changed"] > 0 for r in run.recap.values()), run.recap
    assert run.summary["rollout"] == "complete" and run.summary["stopped_by"] == []
    for host in fleet.hosts:
        entry = run.summary["hosts"][host.name]
        assert entry["status"] == "updated", entry
        (disp,) = entry["dispatchers"]
        assert (disp["name"], disp["generation_before"], disp["attached"]) == (host.dispatcher, 1, True), entry
        assert disp["generation"] > 1, entry
        assert disp["chain"].startswith("pre: count_b.count -> drop.drop_port"), entry

    assert_on_b(rollout.traffic(fleet.hosts), [h.name for h in fleet.hosts])
    # Built once for the fleet (the role builds on the controller by default):
    # clang ran on the controller once per distinct program, two objects per
    # plugin (plain, and prefixed for linking), one verification program per
    # hookable function of each, one dispatcher for the one chain of all 20
    # hosts; the targets ran no compiler.
    compiled = compiled_sources(caches[0])
    assert compiled == {"counter_twin.c": 2, "dropper.c": 2, "trial.c": 4, "dispatcher.c": 1}, compiled
    assert compiled_sources(caches[1]) == {}
    print("[rollout] fleet of %d: rollout %.1f s, clang on the controller %d runs, on the targets 0"
          % (SIZE, wall, sum(compiled.values())))
    # The boot units were installed on the way (checked in the reboot test).
    assert sorted(os.listdir(rollout.units)) == sorted("dpt-restore-%s.service" % h.name for h in fleet.hosts)


def compiled_sources(cache):
    """{source file name: compiles} of a compile cache: one entry (manifest)
    per clang run that filled it."""
    out = {}
    for dirpath, _dirs, files in os.walk(os.path.join(cache, "objects")):
        for name in files:
            if name.endswith(".json") and not name.startswith("."):
                with open(os.path.join(dirpath, name)) as handle:
                    argv = json.load(handle)["argv"]
                src = os.path.basename([a for a in argv if a.endswith(".c")][-1])
                out[src] = out.get(src, 0) + 1
    return out


class SequencedStream:
    """UDP from the router to one host at a steady pace, each datagram carrying
    its sequence number; the receiver inside the host records every number."""

    def __init__(self, fleet, host, port=9100, burst=20, pause=0.002):
        self.fleet, self.host, self.port, self.burst, self.pause = fleet, host, port, burst, pause
        self.sent = 0
        self.seen = set()
        self.stop = threading.Event()
        with fleet.lab.in_ns(host.netns):
            self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Root may exceed rmem_max: a stalled receiver thread must not be a loss.
        self.rx.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 32 << 20)
        self.rx.bind((host.addr, port))
        self.rx.settimeout(0.5)
        with fleet.lab.in_ns(fleet.router):
            self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.threads = [threading.Thread(target=self._send), threading.Thread(target=self._recv)]

    def _send(self):
        while not self.stop.is_set():
            for _burst in range(self.burst):
                self.tx.sendto(struct.pack("!Q", self.sent) + b"." * 56, (self.host.addr, self.port))
                self.sent += 1
            time.sleep(self.pause)

    def _recv(self):
        while True:
            try:
                data = self.rx.recv(2048)
            except socket.timeout:
                if self.stop.is_set():
                    return  # sender stopped and the line is quiet
                continue
            self.seen.add(struct.unpack("!Q", data[:8])[0])

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()
        self.tx.close()
        self.rx.close()


def test_rollback_under_traffic_loses_no_packet(rollout):
    fleet = rollout.fleet
    host = fleet.host("h20")
    counts_before = rollout.counts([host])[host.name]
    swaps = []
    with SequencedStream(fleet, host) as stream:
        time.sleep(0.3)
        for _round in range(3):
            # Back to the previous generation (A), then forward to B again.
            back = rollout.module(host, "datapath_rollback", dispatcher=host.dispatcher)["dispatchers"]
            forward = rollout.module(host, "datapath_rollback", dispatcher=host.dispatcher,
                                     generation=back[0]["from"])["dispatchers"]
            swaps.append((back, forward))
            time.sleep(0.2)
        time.sleep(0.3)
    b = swaps[0][0][0]["from"]
    for back, forward in swaps:
        assert back == [{"name": host.dispatcher, "from": b, "to": 1, "changed": True}], swaps
        assert forward == [{"name": host.dispatcher, "from": 1, "to": b, "changed": True}], swaps
    lost = sorted(set(range(stream.sent)) - stream.seen)
    print("[rollout] 6 swaps under load: sent %d, lost %d" % (stream.sent, len(lost)))
    assert stream.sent > 1000, "the stream was too thin to prove anything: %d datagrams" % stream.sent
    assert lost == [], "%d of %d datagrams lost across the swaps, first %s" % (len(lost), stream.sent, lost[:10])
    counts_after = rollout.counts([host])[host.name]
    # Both chains carried part of the stream: the swaps really happened under it.
    assert counts_after["count_a"] > counts_before["count_a"]
    assert counts_after["count_b"] > counts_before["count_b"]
    assert_on_b(rollout.traffic([host]), [host.name])


def exec_start(unit_file):
    """(argv, environment) of a unit's ExecStart, with systemd's quoting undone."""
    env, argv = {}, None
    with open(unit_file) as handle:
        for line in handle:
            key, _sep, value = line.strip().partition("=")
            if key == "Environment":
                name, _sep, val = shlex.split(value)[0].partition("=")
                env[name] = val.replace("%%", "%")
            elif key == "ExecStart":
                argv = [arg.replace("%%", "%") for arg in shlex.split(value)]
    assert argv, "no ExecStart in %s" % unit_file
    return argv, env


def attached_tcx(host):
    proc = subprocess.run(["ip", "netns", "exec", host.netns, "bpftool", "-j", "net", "show", "dev", host.ifname],
                          capture_output=True, text=True, check=True, timeout=30)
    return json.loads(proc.stdout)[0].get("tc", [])


def test_reboot_then_boot_unit_restores_and_rerun_changes_nothing(rollout):
    fleet = rollout.fleet
    fleet.unpin_all()
    assert all(attached_tcx(h) == [] for h in fleet.hosts), "the simulated reboot left programs attached"

    def boot(host):
        argv, env = exec_start(os.path.join(rollout.units, "dpt-restore-%s.service" % host.name))
        proc = subprocess.run(argv, capture_output=True, text=True, env=dict(env, PATH=os.environ["PATH"]),
                              timeout=300, check=False)
        assert proc.returncode == 0, "%s: %s %s" % (argv, proc.stdout, proc.stderr)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    started = time.monotonic()
    restored = in_parallel(boot, fleet.hosts)
    timed("boot units of %d hosts" % SIZE, started)
    for host, result in zip(fleet.hosts, restored):
        assert result["changed"] is True, result
        assert [d["name"] for d in result["dispatchers"] if d["changed"]] == [host.dispatcher], result
    assert_on_b(rollout.traffic(fleet.hosts), [h.name for h in fleet.hosts])

    # The rollout again, as the A -> B test ran it (its caches hold what it built).
    caches = (os.path.join(rollout.work, "controller-cache"), os.path.join(rollout.work, "targets-cache"))
    run = rollout.play(CHAIN_B, caches=caches, datapath_rollout_code_dir=os.path.join(rollout.work, "code"))
    assert run.rc == 0, str(run)
    assert sorted(run.recap) == [h.name for h in fleet.hosts]
    assert all(r["changed"] == 0 and r["failed"] == 0 for r in run.recap.values()), run.recap
    assert set(e["status"] for e in run.summary["hosts"].values()) == {"unchanged"}, run.summary
