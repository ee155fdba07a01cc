# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scratch root: run a module with ``state_dir: /`` or ``/etc`` where a
mistake cannot harm the machine, and see exactly what it wrote.

``in_scratch(scratch, steps)`` starts this file as a program under
``unshare --mount --propagation private``. In that private mount namespace it
builds a root directory (``<scratch>/root``) that looks like the host's:
``/usr`` and ``/var`` bound read-only, ``/etc`` and ``/var/lib`` as overlays
whose writes land in ``<scratch>/etc-upper`` and ``<scratch>/var-lib-upper``,
``/tmp`` and ``/`` itself plain directories under ``<scratch>``, the work
tree and the tests' Python environment bound at their paths, ``/proc`` and ``/sys`` mounted, and a *new, empty* BPF
filesystem at ``/sys/fs/bpf``. It chroots there and runs the steps: a
``snapshot`` (mode and names of ``/``, ``/etc``, ``/tmp``, ``/var/lib``,
``/sys/fs/bpf``) or a module run. When the namespace ends, every mount goes
with it; what a run wrote to ``/``, ``/etc`` or ``/var/lib`` stays in the
scratch directories for the test to read, and the host's own are untouched.

The test in this file checks the scratch root itself: a write to each system
directory inside it lands in the scratch, never on the host.
"""

import json
import os
import shutil
import stat
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEM_VIEW = ("/", "/etc", "/tmp", "/var/lib", "/sys/fs/bpf")


def in_scratch(scratch, steps, binds=(), timeout=300):
    """Run steps in a fresh scratch root under scratch; returns their results.

    A step is ["snapshot"] or ["module", name, args dict]. binds: host
    directories (in the host's bpffs or under /tmp) that appear at the same
    path inside, so a run there meets the host's other roots."""
    scratch = str(scratch)
    os.makedirs(scratch, exist_ok=True)
    plan = os.path.join(scratch, "plan.json")
    with open(plan, "w") as handle:
        json.dump({"steps": steps, "binds": list(binds)}, handle)
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                           os.path.abspath(__file__), scratch], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        raise AssertionError("scratch root failed (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:],
                                                                       proc.stderr[-3000:]))
    with open(os.path.join(scratch, "root", "tmp", "results.json")) as handle:
        return json.load(handle)


def written(scratch):
    """What ended up in the scratch copies of /, /etc and /var/lib: {dir: [names]}."""
    scratch = str(scratch)
    root = os.path.join(scratch, "root")
    base = set(_SKELETON) | set(_LINKS) | set(p.split("/")[1] for p in (ROOT, sys.prefix))
    return {
        "/": sorted(set(os.listdir(root)) - base),
        "/etc": sorted(os.listdir(os.path.join(scratch, "etc-upper"))),
        "/var/lib": sorted(os.listdir(os.path.join(scratch, "var-lib-upper"))),
    }


# ---------------------------------------------------------------- inside the namespace

_SKELETON = ("usr", "etc", "var", "proc", "sys", "dev", "tmp", "run", "root")
_LINKS = {"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64", "sbin": "usr/sbin"}


def _mount(*args):
    subprocess.run(["mount"] + list(args), check=True, capture_output=True)


def _build(scratch, binds):
    root = os.path.join(scratch, "root")
    for name in ("root", "etc-upper", "etc-work", "var-lib-upper", "var-lib-work"):
        os.makedirs(os.path.join(scratch, name), exist_ok=True)
    for name in _SKELETON:
        os.makedirs(os.path.join(root, name), exist_ok=True)
    os.chmod(root, 0o755)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    for name, target in _LINKS.items():
        if not os.path.lexists(os.path.join(root, name)):
            os.symlink(target, os.path.join(root, name))
    for src in ("/usr", "/var"):
        _mount("--bind", src, root + src)
        _mount("-o", "remount,bind,ro", root + src)
    _mount("-t", "overlay", "overlay", "-o", "lowerdir=/etc,upperdir=%s/etc-upper,workdir=%s/etc-work"
           % (scratch, scratch), root + "/etc")
    _mount("-t", "overlay", "overlay", "-o", "lowerdir=/var/lib,upperdir=%s/var-lib-upper,workdir=%s/var-lib-work"
           % (scratch, scratch), root + "/var/lib")
    # The work tree and the Python environment running the tests, at their own paths.
    for path in (ROOT, sys.prefix):
        os.makedirs(root + path, exist_ok=True)
        _mount("--bind", path, root + path)
    _mount("--rbind", "/dev", root + "/dev")
    _mount("-t", "proc", "proc", root + "/proc")
    _mount("--rbind", "/sys", root + "/sys")
    _mount("-t", "bpf", "bpf", root + "/sys/fs/bpf")  # a new instance: empty, gone with the namespace
    for path in binds:
        os.makedirs(root + path, exist_ok=True)
        _mount("--rbind", path, root + path)
    return root


def _snapshot():
    view = {}
    for path in SYSTEM_VIEW:
        st = os.stat(path)
        view[path] = [oct(stat.S_IMODE(st.st_mode)), sorted(os.listdir(path))]
    return view


def _run_module(name, args):
    path = "/tmp/args-%s.json" % name
    payload = dict(args, _ansible_check_mode=False, _ansible_diff=True, _ansible_tmpdir="/tmp",
                   _ansible_remote_tmp="/tmp")
    with open(path, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "build"), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "plugins", "modules", name + ".py"), path],
                          capture_output=True, text=True, env=env, timeout=240, check=False)
    os.unlink(path)
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = {"failed": True, "msg": "no JSON (rc %d): %s" % (proc.returncode, proc.stderr[-2000:])}
    return result


def _main(scratch):
    with open(os.path.join(scratch, "plan.json")) as handle:
        plan = json.load(handle)
    steps = plan["steps"]
    root = _build(scratch, plan["binds"])
    os.chroot(root)
    os.chdir("/")
    results = []
    for step in steps:
        if step[0] == "snapshot":
            results.append(_snapshot())
        elif step[0] == "module":
            results.append(_run_module(step[1], step[2]))
        elif step[0] == "write":  # the self-test: a file written at step[1]
            with open(step[1], "w") as handle:
                handle.write("canary")
            results.append(None)
        else:
            raise SystemExit("unknown step %r" % (step,))
    with open("/tmp/results.json", "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    _main(sys.argv[1])


# ---------------------------------------------------------------- the scratch root's own test

def test_writes_in_the_scratch_root_never_reach_the_host(tmp_path):
    host_before = dict((p, sorted(os.listdir(p))) for p in SYSTEM_VIEW)
    canary = "dpt-scratch-canary-%d" % os.getpid()
    steps = [["snapshot"]] + [["write", os.path.join(d, canary)] for d in ("/", "/etc", "/var/lib", "/tmp")]
    steps += [["snapshot"]]
    before, *_writes, after = in_scratch(tmp_path / "scratch", steps)
    # Inside: each write is visible where it was made ...
    for d in ("/", "/etc", "/var/lib", "/tmp"):
        assert canary in after[d][1] and canary not in before[d][1], d
    assert set(before["/sys/fs/bpf"][1]) <= set(["maps.debug", "progs.debug"]), "the scratch bpffs is a new instance"
    assert "passwd" in before["/etc"][1] and "dpkg" in before["/var/lib"][1], "the scratch shows the host's files"
    # ... it landed in the scratch ...
    assert written(tmp_path / "scratch") == {"/": [canary], "/etc": [canary], "/var/lib": [canary]}
    # ... and never on the host.
    for path in SYSTEM_VIEW:
        assert not os.path.lexists(os.path.join(path, canary)), path
    assert dict((p, sorted(os.listdir(p))) for p in ("/", "/etc", "/var/lib")) == dict(
        (p, host_before[p]) for p in ("/", "/etc", "/var/lib"))
    assert not any(m.split()[1].startswith(str(tmp_path)) for m in open("/proc/self/mounts")), "mounts leaked"
    shutil.rmtree(str(tmp_path / "scratch"), ignore_errors=True)
