# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run writes and runs on a host, seen by strace.

A whole life cycle (plugins installed, a dispatcher created, its chain changed
with a hook, facts read, everything removed) runs module by module under
``strace -f``, with the compile cache in its default place (state_dir/cache)
and a bpffs_root and state_dir that do not exist yet. Then:

* no path outside bpffs_root and state_dir is written: every open for writing,
  create, rename, unlink, mkdir, chmod and BPF_OBJ_PIN names a path inside
  them (/dev/null aside, and the missing parents of a root, made by mkdir);
* no shell is run: every execve is the module's Python, clang, or one of the
  few fixed helper commands listed in KNOWN_EXECS with their fixed argument;
* registry.json is only ever replaced atomically: a temp file in state_dir,
  written, fsynced, renamed over it, the directory fsynced; never opened for
  writing in place;
* state files are root's, 0600, in 0700 directories; pins are 0600 in 0700
  directories.
"""

import os
import re
import shutil
import stat
import sys

import pytest

from hardening_host import TESTDATA, fresh_host, module_env, run_raw

STRACE = shutil.which("strace")
TRACED = ("trace=%file,bpf,fsync,fdatasync,fchmod,fchown")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
# syscall -> which quoted path arguments it writes (indexes among the quoted strings)
WRITES = {
    "mkdir": (0,), "mkdirat": (0,), "rmdir": (0,), "unlink": (0,), "unlinkat": (0,),
    "rename": (0, 1), "renameat": (0, 1), "renameat2": (0, 1), "link": (1,), "linkat": (1,),
    "symlink": (1,), "symlinkat": (1,), "chmod": (0,), "fchmodat": (0,), "chown": (0,), "lchown": (0,),
    "fchownat": (0,), "truncate": (0,), "mknod": (0,), "mknodat": (0,), "creat": (0,), "utimensat": (0,),
    "utime": (0,), "utimes": (0,), "setxattr": (0,), "lsetxattr": (0,), "removexattr": (0,), "mount": (1,),
}
SHELLS = ("sh", "bash", "dash", "zsh", "ksh", "busybox", "env")
# Programs besides clang that a run starts today, each with the one argument it
# gets (never a shell, never a user-controlled argument):
KNOWN_EXECS = {
    "uname": ("-p",),  # pyroute2 on import: platform.uname()
    "file": ("-b",),  # pyroute2 on import: platform.architecture()
    "ldconfig": ("-p",),  # ctypes.util.find_library: probe.py's namespace probe, libbpf.py's fallback
    "gcc": ("-print-multiarch",),  # toolchain.arch_include_dir() where Python has no MULTIARCH
    "dpkg-architecture": ("-qDEB_HOST_MULTIARCH",),  # its fallback
    "timeout": ("--kill-after=5",),  # clang_run.bounded(): every clang and probe runs under a time limit
    "llvm-objcopy": ("-O",),  # plugin_store.gpl_license_copy(): reads a plugin's license section
}
LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<call>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|\?)")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@pytest.fixture
def traced_host(tmp_path):
    if STRACE is None:
        pytest.fail("strace is needed for this test (Debian package strace)")
    with fresh_host(tmp_path) as host:
        # Roots that do not exist yet: the modules make them, and we see how.
        host.bpffs_root = os.path.join(host.bpffs_root, "ebpf-datapath")
        host.state_dir = os.path.join(str(tmp_path), "var", "lib", "ebpf-datapath")
        host.common = {"bpffs_root": host.bpffs_root, "state_dir": host.state_dir}
        yield host


def traced(host, tmp_path, module, n, **args):
    """Run a module under strace -f; returns its result and the trace lines."""
    out = os.path.join(str(tmp_path), "trace-%02d-%s" % (n, module))
    run = run_raw(module, host.args(**args), env=module_env(cache=False),
                  prefix=[STRACE, "-f", "-qq", "-y", "-s", "512", "-e", TRACED, "-o", out])
    assert run.rc == 0 and run.result and not run.result.get("failed"), run.describe()
    with open(out) as handle:
        return run.result, handle.read().splitlines()


def _paths(args):
    return [bytes(p, "utf-8").decode("unicode_escape") for p in QUOTED.findall(args)]


def writes_of(lines):
    """(call, path) of every attempt to write a path, from strace lines."""
    found = []
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        call, args = m.group("call"), m.group("args")
        if call in ("open", "openat", "openat2"):
            if any(flag in args for flag in WRITE_FLAGS):
                found.append((call, _paths(args)[0]))
        elif call == "bpf" and "BPF_OBJ_PIN" in args:
            found.append((call, re.search(r'pathname="([^"]*)"', args).group(1)))
        elif call in WRITES:
            paths = _paths(args)
            for index in WRITES[call]:
                if index < len(paths):
                    found.append((call, paths[index]))
    return found


def execs_of(lines):
    """(path, argv) of every execve attempt (PATH lookups included)."""
    found = []
    for m in map(LINE.match, lines):
        if m and m.group("call") in ("execve", "execveat"):
            args = m.group("args")
            path = _paths(args)[0]
            vector = re.search(r"\[(.*?)\]", args)
            found.append((path, _paths(vector.group(1)) if vector else []))
    return found


def _ancestors(path):
    path = os.path.normpath(path)
    while path != os.path.dirname(path):
        path = os.path.dirname(path)
        yield path


def inside(path, roots):
    path = os.path.normpath(path)
    return any(path == r or path.startswith(r + os.sep) for r in roots)


def test_life_cycle_writes_only_its_trees_and_runs_no_shell(traced_host, tmp_path):
    host, lab = traced_host, traced_host.lab
    chain = [{"plugin": "counter", "function": "count"}]
    steps = [
        ("datapath_plugin", dict(name="counter", src=os.path.join(TESTDATA, "counter.c"))),
        ("datapath_plugin", dict(name="twin", src=os.path.join(TESTDATA, "counter_twin.c"))),
        ("dispatcher", dict(name="dfiles", attach="tc_ingress", interface=lab.if_b, netns=lab.ns_b,
                            tc_backend="tcx", mode="link", plugins=chain)),
        ("datapath_hook", dict(dispatcher="dfiles", plugin="twin", function="count")),
        ("datapath_info", dict(dispatcher="dfiles", maps=True)),
    ]
    removal = [
        ("dispatcher", dict(name="dfiles", state="absent")),
        ("datapath_plugin", dict(name="twin", state="absent")),
        ("datapath_plugin", dict(name="counter", state="absent")),
    ]
    roots = [host.bpffs_root, host.state_dir]
    all_lines = []
    for n, (module, args) in enumerate(steps):
        _result, lines = traced(host, tmp_path, module, n, **args)
        all_lines += lines
    assert host.burst(8888, 4) == 4 and host.map_value("counter") == 4 and host.map_value("twin") == 4

    _modes_are_private(host)

    for n, (module, args) in enumerate(removal, len(steps)):
        _result, lines = traced(host, tmp_path, module, n, **args)
        all_lines += lines

    writes = writes_of(all_lines)
    assert len(writes) > 20, "the trace shows almost no writes; is strace tracing? %s" % all_lines[:20]
    # mkdir -p of a root may make its missing parents (here var/ and var/lib/ of state_dir).
    parents = set(p for r in roots for p in _ancestors(r))
    outside = sorted(set((call, path) for call, path in writes
                         if not inside(path, roots) and path != os.devnull
                         and not (call in ("mkdir", "mkdirat") and os.path.normpath(path) in parents)))
    assert outside == [], "written outside bpffs_root and state_dir: %s" % outside
    pins = [path for call, path in writes if call == "bpf"]
    assert pins and all(inside(p, [host.bpffs_root]) for p in pins)

    execs = execs_of(all_lines)
    clang = set(["clang", "clang-19", os.path.basename(os.path.realpath(shutil.which("clang-19") or "clang"))])
    python = set([os.path.basename(sys.executable), os.path.basename(os.path.realpath(sys.executable))])
    unexpected = []
    for path, argv in execs:
        name = os.path.basename(argv[0] if argv else path)
        assert name not in SHELLS and os.path.basename(path) not in SHELLS, "a shell was run: %s %s" % (path, argv)
        if name in clang or name in python:
            continue
        if KNOWN_EXECS.get(name) != tuple(argv[1:2]):
            unexpected.append(argv)
    assert unexpected == [], "programs run besides clang and python: %s" % unexpected
    assert [argv for _p, argv in execs if os.path.basename(argv[0]) in clang], "the trace shows no compile"

    _registry_written_atomically(all_lines, host.state_dir)
    assert not os.path.exists(host.bpffs_root), "removal left pins behind: %s" % os.listdir(host.bpffs_root)


def _registry_written_atomically(lines, state_dir):
    registry = os.path.join(state_dir, "registry.json")
    renames = []
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        call, args = m.group("call"), m.group("args")
        paths = _paths(args)
        if call in ("open", "openat") and paths and paths[0] == registry:
            assert not any(flag in args for flag in WRITE_FLAGS), "registry.json opened for writing: " + line
        if call.startswith("rename") and len(paths) == 2 and paths[1] == registry:
            renames.append((m.group("pid"), paths[0]))
    assert len(renames) >= 5, "registry.json was replaced %d times" % len(renames)
    text = "\n".join(lines)
    for pid, tmp in renames:
        assert os.path.dirname(tmp) == state_dir and os.path.basename(tmp).startswith(".tmp-"), tmp
        own = [line for line in lines if line.startswith(pid + " ")]
        opened = [i for i, line in enumerate(own) if '"%s"' % tmp in line and "O_CREAT" in line]
        synced = [i for i, line in enumerate(own) if line.split()[1].startswith("fsync(") and "<%s>" % tmp in line]
        moved = [i for i, line in enumerate(own) if line.split()[1].startswith("rename") and '"%s"' % tmp in line]
        dir_synced = [i for i, line in enumerate(own) if line.split()[1].startswith("fsync(")
                      and "<%s>" % state_dir in line]
        assert opened and synced and moved, "no create, fsync, rename of %s in:\n%s" % (tmp, text[-3000:])
        assert opened[0] < synced[0] < moved[0], "create, fsync, rename out of order for %s" % tmp
        assert [i for i in dir_synced if i > moved[0]], "the directory was not fsynced after the rename"


def _modes_are_private(host):
    """State: root's, files 0600, directories 0700. Pins: 0600, directories 0700."""
    bad = set()
    for top, file_mode in ((host.state_dir, 0o600), (host.bpffs_root, 0o600)):
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [None] + dirnames + filenames:
                full = dirpath if name is None else os.path.join(dirpath, name)
                st = os.lstat(full)
                want = 0o700 if stat.S_ISDIR(st.st_mode) else file_mode
                if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) != want or st.st_uid != 0 or st.st_gid != 0:
                    bad.add("%s %o uid %d" % (full, stat.S_IMODE(st.st_mode), st.st_uid))
    assert not bad, "not private: %s" % sorted(bad)
    files = [os.path.join(d, f) for d, _dn, fs in os.walk(host.state_dir) for f in fs]
    assert os.path.join(host.state_dir, "registry.json") in files and os.path.join(host.state_dir, "lock") in files
    assert [f for f in files if "/objects/" in f] and [f for f in files if "/cache/" in f]
    pins = [os.path.join(d, f) for d, _dn, fs in os.walk(host.bpffs_root) for f in fs]
    assert len(pins) >= 4, pins  # two maps, a program, a link
