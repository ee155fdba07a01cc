# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the hardening tests share: a running host, module runs that may die,
snapshots of everything a failed run must leave alone, steady traffic, and
a count of the kernel objects that are ours.

Oracles are independent of the code under test where it matters: kernel
objects are listed with bpftool, tc filters with ``tc -j``, XDP programs with
``ip -j``, pins are read with the kernel's own info calls.
"""

import contextlib
import hashlib
import json
import os
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_link
from ansible_collections.ebpf.datapath.plugins.module_utils import bpffs
from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned

from modrun import run_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
TESTDATA = os.path.join(ROOT, "bpf", "testdata")
EXAMPLES = os.path.join(ROOT, "bpf", "examples")
CACHE = os.path.join(BUILD, "test-cache")
CRASH_ENV = "EBPF_DATAPATH_CRASH_AT"
# The shared compile cache, also for what this process compiles (tests/conftest.py
# sets it too, but pytest does not load it when run from tests/integration).
os.environ.setdefault("EBPF_DATAPATH_CACHE_DIR", CACHE)

DROP_PORT = 7777  # dropper.c drops UDP to this port
OPEN_PORT = 8888
PAYLOAD = 64
# Bytes a tc program sees of one of our IPv4 UDP datagrams: Ethernet + IPv4 + UDP + payload.
FRAME = 14 + 20 + 8 + PAYLOAD


# ---------------------------------------------------------------- module runs

def module_env(extra=None, cache=True):
    """The environment run_module gives a module, plus extra (None values unset)."""
    env = dict(os.environ, PYTHONPATH=BUILD, PYTHONDONTWRITEBYTECODE="1")
    env.pop(CRASH_ENV, None)
    if cache:
        env.setdefault("EBPF_DATAPATH_CACHE_DIR", CACHE)
    else:
        env.pop("EBPF_DATAPATH_CACHE_DIR", None)
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _args_file(args, check=False):
    payload = dict(args, _ansible_check_mode=check, _ansible_diff=True,
                   _ansible_tmpdir=tempfile.gettempdir(), _ansible_remote_tmp=tempfile.gettempdir())
    fd, path = tempfile.mkstemp(prefix="dpt-args-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
    return path


def module_argv(name, args_path):
    return [sys.executable, os.path.join(ROOT, "plugins", "modules", name + ".py"), args_path]


def parse_result(stdout):
    """The module's JSON answer, or None when it printed none (it was killed)."""
    lines = stdout.strip().splitlines()
    if not lines:
        return None
    try:
        return json.loads(lines[-1])
    except ValueError:
        return None


class Run:
    """One module process started in the background (for concurrency and crashes)."""

    def __init__(self, name, args, env=None, prefix=()):
        self.name = name
        self._args_path = _args_file(args)
        self.proc = subprocess.Popen(list(prefix) + module_argv(name, self._args_path), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env or module_env())

    def wait(self, timeout=300):
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        finally:
            if os.path.exists(self._args_path):
                os.unlink(self._args_path)
        self.rc = self.proc.returncode
        self.result = parse_result(self.stdout)
        return self

    def describe(self):
        return "%s rc %s\nstdout: %s\nstderr: %s" % (self.name, self.rc, self.stdout[-2000:], self.stderr[-2000:])


def run_raw(name, args, env=None, prefix=(), timeout=300):
    """Run a module to its end; returns the finished Run (rc, result or None, output)."""
    return Run(name, args, env=env, prefix=prefix).wait(timeout)


def run_crashing(name, args, point, **kw):
    """Run a module that must kill itself at crash point ``point``: no JSON, SIGKILL."""
    run = run_raw(name, args, env=module_env({CRASH_ENV: point}), **kw)
    assert run.rc == -9 and run.result is None, "expected a SIGKILL at %s, got %s" % (point, run.describe())
    return run


# ---------------------------------------------------------------- the host

class Host:
    """One simulated host: a lab, its own bpffs_root and state_dir."""

    def __init__(self, lab, bpffs_root, state_dir):
        self.lab = lab
        self.bpffs_root = bpffs_root
        self.state_dir = state_dir
        self.common = {"bpffs_root": bpffs_root, "state_dir": state_dir}

    def run(self, module, _fail=False, _check=False, **args):
        return run_module(module, dict(self.common, **args), check=_check, expect_fail=_fail)

    def args(self, **args):
        return dict(self.common, **args)

    def plugin(self, name, src, **args):
        return self.run("datapath_plugin", name=name, src=src if os.path.isabs(src) else os.path.join(TESTDATA, src),
                        **args)

    def map_value(self, plugin, mapname="counts", key=0):
        return read_pinned(os.path.join(self.bpffs_root, "plugins", plugin, "maps", mapname)).get(key, 0)

    def registry(self):
        with open(os.path.join(self.state_dir, "registry.json")) as handle:
            return json.load(handle)

    def burst(self, port, count, src_ns=None, dst_addr=None, dst_ns=None):
        """count datagrams of PAYLOAD bytes a -> b; returns how many arrived."""
        lab = self.lab
        dst_addr = dst_addr or lab.addr_b
        with lab.recv_udp(dst_ns or lab.ns_b, port, addr=dst_addr) as rx:
            lab.send_udp(src_ns or lab.ns_a, dst_addr, port, count=count, payload_size=PAYLOAD)
            return rx.wait(count, timeout=1.0 if count else 0.2)


# ---------------------------------------------------------------- snapshots

def _pin_identity(path):
    """(kind, kernel id, detail) of the object pinned at path, from the kernel's
    /proc fdinfo of an fd to it: detail is a link's program id, a map's type."""
    fd = libbpf.obj_get(path)
    try:
        with open("/proc/self/fdinfo/%d" % fd) as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
    finally:
        libbpf.close_fd(fd)
    fields = dict((k.strip(), v.strip()) for k, v in fields.items())
    if "link_id" in fields:
        return "link", int(fields["link_id"]), int(fields.get("prog_id", 0))
    if "prog_id" in fields:
        return "prog", int(fields["prog_id"]), fields.get("prog_tag")
    if "map_id" in fields:
        return "map", int(fields["map_id"]), fields.get("map_type")
    return "unknown", None, None


def pins(bpffs_root):
    """{relative path: (mode, uid, kind, kernel id, detail)} of everything under
    bpffs_root; directories as (mode, uid, 'dir')."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(bpffs_root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, bpffs_root)
            if stat.S_ISDIR(st.st_mode):
                found[rel] = (oct(stat.S_IMODE(st.st_mode)), st.st_uid, "dir")
            else:
                found[rel] = (oct(stat.S_IMODE(st.st_mode)), st.st_uid) + _pin_identity(full)
    return found


def state_files(state_dir, skip=("cache",)):
    """{relative path: (mode, uid, size, sha256)} under state_dir (the compile
    cache left out: a failed compile may add to it, by design)."""
    found = {}
    if not os.path.isdir(state_dir):
        return found
    for dirpath, dirnames, filenames in os.walk(state_dir):
        rel_dir = os.path.relpath(dirpath, state_dir)
        dirnames[:] = [d for d in dirnames if not (rel_dir == "." and d in skip)]
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, state_dir)
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            found[rel] = (oct(stat.S_IMODE(st.st_mode)), st.st_uid, stat.S_IFMT(st.st_mode),
                          st.st_size if stat.S_ISREG(st.st_mode) else None, digest)
    return found


def _json(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise AssertionError("%s failed: %s" % (" ".join(argv), proc.stderr))
    return json.loads(proc.stdout or "[]")


def _json_stream(text):
    """Several JSON documents one after another (tc -batch -j prints one per command)."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def tc_filters(ns, ifnames):
    """{(ifname, direction): [(priority, handle, kind, bpf program id)]} at the
    clsact hooks of interfaces in ns, by one `tc -j -batch` run."""
    keys = [(ifname, direction) for ifname in ifnames for direction in ("ingress", "egress")]
    script = "".join("filter show dev %s %s\n" % key for key in keys)
    proc = subprocess.run(["tc", "-n", ns, "-j", "-batch", "-"], input=script, capture_output=True, text=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        raise AssertionError("tc -batch failed: %s" % proc.stderr)
    found = {}
    for key, filters in zip(keys, _json_stream(proc.stdout)):
        out = []
        for f in filters:
            if "options" not in f:
                continue  # the per-priority head entry
            prog = (f.get("options") or {}).get("prog") or {}
            out.append((f.get("pref"), f["options"].get("handle"), f.get("kind"), prog.get("id")))
        found[key] = sorted(out, key=repr)
    return found


def xdp_progs(ns):
    """{ifname: XDP program id or None} of every interface in ns, by `ip -j -d link`."""
    return dict((link["ifname"], ((link.get("xdp") or {}).get("prog") or {}).get("id"))
                for link in _json(["ip", "-n", ns, "-j", "-d", "link", "show"]))


def tcx_progs(lab, ns, ifname):
    """{'ingress': [ids], 'egress': [ids]} of tcx programs, in run order."""
    ifindex = lab.ifindex(ns, ifname)
    out = {}
    with lab.in_ns(ns):
        for direction, attach_type in (("ingress", libbpf.BPF_TCX_INGRESS), ("egress", libbpf.BPF_TCX_EGRESS)):
            out[direction] = bpf_link.prog_query(ifindex, attach_type).prog_ids
    return out


def attachments(lab, interfaces):
    """Every program attached at the given (ns, ifname) points: tcx, clsact, XDP."""
    by_ns = {}
    for ns, ifname in interfaces:
        by_ns.setdefault(ns, []).append(ifname)
    found = {}
    for ns, ifnames in by_ns.items():
        filters = tc_filters(ns, ifnames)
        xdp = xdp_progs(ns)
        for ifname in ifnames:
            found[ifname] = {
                "tcx": tcx_progs(lab, ns, ifname),
                "clsact_ingress": filters[(ifname, "ingress")],
                "clsact_egress": filters[(ifname, "egress")],
                "xdp": xdp.get(ifname),
            }
    return found


def registry_bytes(state_dir):
    path = os.path.join(state_dir, "registry.json")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        return handle.read()


def snapshot(host, interfaces):
    """Everything a failed run must leave as it was."""
    return {
        "pins": pins(host.bpffs_root),
        "registry": registry_bytes(host.state_dir),
        "files": state_files(host.state_dir),
        "kernel": attachments(host.lab, interfaces),
    }


def diff_snapshots(before, after):
    """A readable list of what differs (empty when nothing does)."""
    out = []
    for key in ("pins", "files"):
        b, a = before[key], after[key]
        for rel in sorted(set(b) | set(a)):
            if b.get(rel) != a.get(rel):
                out.append("%s %s: %s -> %s" % (key, rel, b.get(rel), a.get(rel)))
    if before["registry"] != after["registry"]:
        out.append("registry.json changed")
    if before["kernel"] != after["kernel"]:
        out.append("attachments: %s -> %s" % (before["kernel"], after["kernel"]))
    return out


# ---------------------------------------------------------------- our kernel objects

def bpftool(*args):
    return _json(["bpftool", "-j"] + list(args))


def expected_objects(host):
    """What the registry says must exist: programs, links and pins."""
    reg = host.registry()
    progs, links, pinned = set(), set(), set()
    for name, record in reg["plugins"].items():
        for m in record["maps"]:
            pinned.add(os.path.join("plugins", name, "maps", m))
    for name, disp in reg["dispatchers"].items():
        for gen in disp.get("generations", []):
            progs.add(gen["prog_id"])
            pinned.add(os.path.relpath(gen["prog_pin"], host.bpffs_root))
        att = disp.get("attachment") or {}
        if att.get("link_id"):
            links.add(att["link_id"])
        if att.get("link_pin"):
            pinned.add(os.path.relpath(att["link_pin"], host.bpffs_root))
    return {"progs": progs, "links": links, "pins": pinned}


def kernel_objects(host):
    """Our objects as bpftool sees them kernel-wide: the plugin maps pinned under
    bpffs_root, every program that uses one of them (each dispatcher links
    plugin maps), every link running one of those programs, and every map of
    those programs."""
    plugin_maps = set()
    for rel, entry in pins(host.bpffs_root).items():
        if len(entry) > 3 and entry[2] == "map":
            plugin_maps.add(entry[3])
    progs = [p for p in bpftool("prog", "show") if plugin_maps & set(p.get("map_ids") or [])]
    prog_ids = set(p["id"] for p in progs)
    links = set(link["id"] for link in bpftool("link", "show") if link.get("prog_id") in prog_ids)
    maps = set(plugin_maps)
    for p in progs:
        maps |= set(p.get("map_ids") or [])
    files = set(rel for rel, entry in pins(host.bpffs_root).items() if entry[2] != "dir")
    return {"progs": prog_ids, "links": links, "maps": maps, "pins": files}


def wait_for_objects(host, timeout=10.0):
    """Poll until our kernel objects are exactly what the registry needs (the
    kernel frees a dead process's programs a moment after it exits); returns
    (objects, expected)."""
    deadline = time.monotonic() + timeout
    while True:
        got = kernel_objects(host)
        want = expected_objects(host)
        same = got["progs"] == want["progs"] and got["links"] == want["links"] and got["pins"] == want["pins"]
        if same:
            return got, want
        if time.monotonic() > deadline:
            return got, want
        time.sleep(0.1)


# ---------------------------------------------------------------- steady traffic

class Stream:
    """A sender in namespace a sending numbered UDP datagrams at a steady rate to
    b, and a receiver in b recording which arrived; both in threads."""

    def __init__(self, lab, port, interval=0.002, dst=None):
        self.lab = lab
        self.port = port
        self.interval = interval
        self.dst = dst or lab.addr_b
        with lab.in_ns(lab.ns_b):
            self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.rx.bind((self.dst, port))
        self.rx.settimeout(0.2)
        with lab.in_ns(lab.ns_a):
            self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sent = 0
        self.received = set()
        self._stop = threading.Event()
        self._rx_stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, daemon=True),
                         threading.Thread(target=self._recv, daemon=True)]

    def _send(self):
        pad = b"." * (PAYLOAD - 8)
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.tx.sendto(b"%08d" % self.sent + pad, (self.dst, self.port))
            self.sent += 1
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _recv(self):
        while not self._rx_stop.is_set():
            try:
                data = self.rx.recv(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.received.add(int(data[:8]))

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        """Stop sending, let the last datagrams arrive; returns (sent, missing seq numbers)."""
        if not self._stop.is_set():
            self._stop.set()
            self._threads[0].join()
            deadline = time.monotonic() + 2.0
            while len(self.received) < self.sent and time.monotonic() < deadline:
                time.sleep(0.02)
            self._rx_stop.set()
            self._threads[1].join()
        return self.sent, sorted(set(range(self.sent)) - self.received)

    def __exit__(self, *exc):
        self.stop()
        self.tx.close()
        self.rx.close()
        return False


# ---------------------------------------------------------------- set-up helpers

BPFFS = "/sys/fs/bpf"


@contextlib.contextmanager
def fresh_host(state_parent, quiet=True):
    """A lab (quiet: no packets but the test's), a private bpffs_root and
    state_dir; everything removed afterwards, whatever happened."""
    from lab import Lab, remove_tree
    bpffs.ensure_bpffs(BPFFS)
    the_lab = Lab()
    root = os.path.join(BPFFS, "dpt-" + secrets.token_hex(4))
    try:
        the_lab.setup()
        if quiet:
            the_lab.quiet()
        os.mkdir(root, 0o700)
        yield Host(the_lab, root, os.path.join(str(state_parent), "state"))
    finally:
        try:
            remove_tree(root)
        finally:
            the_lab.close()


def compile_testdata(name):
    """A test program compiled into the shared cache (path of the cached object)."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
    from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess
    return Toolchain(os.environ.get("EBPF_DATAPATH_CACHE_DIR") or CACHE, run_subprocess).compile(
        os.path.join(TESTDATA, name)).object_path
