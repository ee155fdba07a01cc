# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upgrades: a host converged by the previous release is taken over by this code.

The previous release is built from this repository's history (``git archive``
of PREVIOUS, the last commit before the registry schema changed) into a temp
directory laid out as ``ansible_collections/ebpf/datapath``, and its modules run
the way Ansible runs them (tests/modrun.py's way, with that tree on PYTHONPATH).
It converges two plugins and a dispatcher on the lab; then this code takes the
host over with the same arguments while UDP with sequence numbers flows:

* nothing changes (changed=false everywhere), nothing is rebuilt or swapped:
  the program id at the attach point and the tcx link id (or the clsact
  filter) are the ones the previous release made;
* no packet is lost or counted twice: every sequence number arrives once and
  both plugins of the chain counted every packet;
* the registry is migrated (schema_version written) on the first real change,
  and a rollback to the generation the previous release built still works.

And the reverse: a registry of a newer schema than this code knows is refused
with a message that says so, and nothing is touched; the previous release,
meeting a registry this code wrote, refuses it too instead of misreading it.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from modhost import OPEN_PORT, place
from modrun import run_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTDATA = os.path.join(ROOT, "bpf", "testdata")
# The last commit before this session's engine work: registry schema 1.
PREVIOUS = "028bc1a"
SEQ = struct.Struct("!Q")
RATE_PPS = 1000


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory):
    """PYTHONPATH entry whose ansible_collections/ebpf/datapath is release PREVIOUS."""
    top = tmp_path_factory.mktemp("previous-release")
    tree = top / "ansible_collections" / "ebpf" / "datapath"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", PREVIOUS], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, check=False)
    if archive.returncode != 0:
        pytest.fail("cannot build the previous release %s from this repository's history (a clone with its "
                    "history is needed): %s" % (PREVIOUS, archive.stderr.decode(errors="replace")))
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    yield str(top)
    shutil.rmtree(str(top), ignore_errors=True)


def run_previous(pythonpath, module, args, expect_fail=False):
    """A module of the previous release, run as Ansible runs one on a target."""
    payload = dict(args, _ansible_check_mode=False, _ansible_diff=True,
                   _ansible_tmpdir=tempfile.gettempdir(), _ansible_remote_tmp=tempfile.gettempdir())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
        path = handle.name
    script = os.path.join(pythonpath, "ansible_collections", "ebpf", "datapath", "plugins", "modules", module + ".py")
    try:
        proc = subprocess.run([sys.executable, script, path], capture_output=True, text=True, check=False,
                              env=dict(os.environ, PYTHONPATH=pythonpath), timeout=300)
    finally:
        os.unlink(path)
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError("previous %s printed no JSON (rc %d):\n%s\n%s"
                             % (module, proc.returncode, proc.stdout, proc.stderr))
    assert bool(result.get("failed")) == expect_fail, "previous %s: %s" % (module, json.dumps(result))
    return result


class Sequenced:
    """UDP with sequence numbers from a to b at a steady rate, on a thread."""

    def __init__(self, lab):
        self.lab = lab
        with lab.in_ns(lab.ns_b):
            self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.rx.bind(("0.0.0.0", OPEN_PORT))
        self.rx.settimeout(0.2)
        with lab.in_ns(lab.ns_a):
            self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sent = 0
        self.received = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._send), threading.Thread(target=self._receive)]

    def _send(self):
        period = 1.0 / RATE_PPS
        next_at = time.monotonic()
        while not self.stopping.is_set():
            self.tx.sendto(SEQ.pack(self.sent), (self.lab.addr_b, OPEN_PORT))
            self.sent += 1
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _receive(self):
        quiet_since = None
        while True:
            try:
                data = self.rx.recv(64)
                self.received.append(SEQ.unpack_from(data)[0])
                quiet_since = None
            except socket.timeout:
                if self.stopping.is_set():
                    if quiet_since is not None:
                        return  # two quiet periods after the sender stopped: all in
                    quiet_since = time.monotonic()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)
        self.tx.close()
        self.rx.close()


def attachment(lab, backend, prog_id):
    """What the kernel has at tc ingress of b: (kind, id) of the tcx link or clsact filter running prog_id."""
    if backend == "tcx":
        links = json.loads(subprocess.run(["bpftool", "-j", "link", "show"], check=True,
                                          stdout=subprocess.PIPE).stdout or b"[]")
        ours = [link["id"] for link in links if link.get("prog_id") == prog_id]
        assert len(ours) == 1, "exactly one link runs program %d: %s" % (prog_id, links)
        return ("link", ours[0])
    out = subprocess.run(["tc", "-n", lab.ns_b, "-j", "filter", "show", "dev", lab.if_b, "ingress"], check=True,
                         stdout=subprocess.PIPE).stdout
    filters = [f for f in json.loads(out or b"[]") if f.get("options", {}).get("prog", {}).get("id") == prog_id]
    assert len(filters) == 1, "exactly one filter runs program %d: %s" % (prog_id, out)
    return ("filter", filters[0]["pref"], filters[0]["options"].get("handle"))


def chain(*plugins):
    return [{"plugin": p, "function": "count"} for p in plugins]


@pytest.mark.parametrize("backend", ["tcx", "clsact"])
def test_previous_release_host_is_taken_over_without_a_swap(previous_release, lab, bpffs_root, state_dir, tmp_path,
                                                            backend, monkeypatch):
    lab.quiet()
    monkeypatch.setenv("EBPF_DATAPATH_CACHE_DIR", os.path.join(state_dir, "cache"))
    common = {"bpffs_root": bpffs_root, "state_dir": state_dir}
    # One source path for both releases: the plugin's recorded source is part of its identity.
    for name in ("counter.c", "counter_twin.c"):
        shutil.copy(os.path.join(TESTDATA, name), str(tmp_path / name))
    plugins = [dict(common, name="counter", src=str(tmp_path / "counter.c")),
               dict(common, name="twin", src=str(tmp_path / "counter_twin.c"))]
    dispatcher = dict(common, name="gw", attach="tc_ingress", tc_backend=backend, mode="link",
                      plugins=chain("counter", "twin"), **place(lab, "b"))

    # The previous release converges the host.
    for args in plugins:
        assert run_previous(previous_release, "datapath_plugin", args)["changed"] is True
    old = run_previous(previous_release, "dispatcher", dispatcher)
    assert old["changed"] is True and old["generation"] == 1
    with open(os.path.join(state_dir, "registry.json")) as handle:
        assert "schema_version" not in json.load(handle), "the previous release writes schema 1"
    where = attachment(lab, backend, old["prog_id"])

    def counted():
        return [run_module("datapath_info", dict(common, maps=True))["plugins"]]

    before = dict((p["name"], p["map_values"]["counts"].get("0", 0)) for p in counted()[0])
    with Sequenced(lab) as traffic:
        # This code takes over with the same arguments: nothing to do.
        info = run_module("datapath_info", dict(common, dispatcher="gw"))["dispatchers"][0]
        assert info["attached"] is True and info["prog_id"] == old["prog_id"] and info["generation"] == 1
        for args in plugins:
            assert run_module("datapath_plugin", args)["changed"] is False
        new = run_module("dispatcher", dispatcher)
        assert new["changed"] is False and new["prog_id"] == old["prog_id"]
        assert run_module("datapath_restore", common)["changed"] is False
        assert run_module("dispatcher", dispatcher)["changed"] is False
        time.sleep(0.3)
    assert attachment(lab, backend, old["prog_id"]) == where, "no swap: the same program at the same link or filter"

    # No interruption: every sequence number arrived once, and the chain counted each packet.
    assert traffic.sent > 500
    assert sorted(traffic.received) == list(range(traffic.sent)), \
        "lost %d, duplicated %d of %d" % (traffic.sent - len(set(traffic.received)),
                                          len(traffic.received) - len(set(traffic.received)), traffic.sent)
    after = dict((p["name"], p["map_values"]["counts"].get("0", 0)) for p in counted()[0])
    assert dict((n, after[n] - before[n]) for n in after) == {"counter": traffic.sent, "twin": traffic.sent}

    # The first real change writes the registry in this code's schema; the rerun is no change.
    reordered = dict(dispatcher, plugins=[{"plugin": "twin", "function": "count", "priority": 10},
                                          {"plugin": "counter", "function": "count", "priority": 20}])
    changed = run_module("dispatcher", reordered)
    assert changed["changed"] is True and changed["generation"] == 2
    with open(os.path.join(state_dir, "registry.json")) as handle:
        migrated = json.load(handle)
    from ansible_collections.ebpf.datapath.plugins.module_utils.schema import SCHEMA_VERSION
    assert migrated.get("schema_version") == SCHEMA_VERSION
    assert run_module("dispatcher", reordered)["changed"] is False
    # The generation the previous release built is still a rollback target.
    back = run_module("datapath_rollback", dict(common, dispatcher="gw", generation=1))
    assert back["changed"] is True
    info = run_module("datapath_info", dict(common, dispatcher="gw"))["dispatchers"][0]
    assert info["generation"] == 1 and info["prog_id"] == old["prog_id"] and info["attached"] is True

    # The previous release meets the registry this code wrote: refused, not misread.
    with open(os.path.join(state_dir, "registry.json"), "rb") as handle:
        written = handle.read()
    refused = run_previous(previous_release, "dispatcher", dispatcher, expect_fail=True)
    assert "registry version" in refused["msg"] and str(SCHEMA_VERSION) in refused["msg"]
    with open(os.path.join(state_dir, "registry.json"), "rb") as handle:
        assert handle.read() == written, "the previous release must not rewrite a registry it cannot read"

    run_module("dispatcher", dict(common, name="gw", state="absent"))


def test_a_registry_of_a_newer_schema_is_refused_and_left_alone(lab, bpffs_root, state_dir, tmp_path, monkeypatch):
    lab.quiet()
    monkeypatch.setenv("EBPF_DATAPATH_CACHE_DIR", os.path.join(state_dir, "cache"))
    common = {"bpffs_root": bpffs_root, "state_dir": state_dir}
    run_module("datapath_plugin", dict(common, name="counter", src=os.path.join(TESTDATA, "counter.c")))
    dispatcher = dict(common, name="gw", attach="tc_ingress", mode="link", plugins=chain("counter"),
                      **place(lab, "b"))
    first = run_module("dispatcher", dispatcher)
    path = os.path.join(state_dir, "registry.json")
    with open(path) as handle:
        data = json.load(handle)
    from ansible_collections.ebpf.datapath.plugins.module_utils.schema import SCHEMA_VERSION
    newer = SCHEMA_VERSION + 1
    data["schema_version"] = data["version"] = newer
    data["a_field_of_the_future"] = {"gw": "something this code cannot know"}
    with open(path, "w") as handle:
        json.dump(data, handle)
    with open(path, "rb") as handle:
        written = handle.read()

    for module, args in (("datapath_info", common), ("dispatcher", dispatcher), ("datapath_restore", common),
                         ("datapath_plugin", dict(common, name="counter", src=os.path.join(TESTDATA, "counter.c")))):
        refused = run_module(module, args, expect_fail=True)
        assert "newer version of ebpf.datapath" in refused["msg"] and str(newer) in refused["msg"], refused["msg"]
        assert "Upgrade the collection" in refused["msg"]
    with open(path, "rb") as handle:
        assert handle.read() == written, "a registry this code cannot read must be left as it is"
    # Nothing at the attach point changed either: the same program still runs.
    out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(first["prog_id"])], stdout=subprocess.PIPE,
                         check=False)
    assert out.returncode == 0, "the running program must still be loaded"
