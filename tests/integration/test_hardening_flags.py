# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compiler flags never escape (issue 16), in the bad-input table's
before/after-snapshot form.

A running host (counter -> dropper at tcx ingress, traffic) gets a new plugin
whose cflags would load code into clang or write a file outside the roots:
a real shared object built with gcc whose constructor writes a canary file
(so "it was loaded" is a file on disk, not a guess), response files, flags
that write a file at a path the test names. Each run must fail naming the
flag; afterwards no canary and no written file exists, the plugin source's
directory is as before, and the host's pins, registry, state files and
attached programs are unchanged, and the chain still runs.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from hardening_host import TESTDATA, diff_snapshots, fresh_host, snapshot
from test_hardening_roots import World, tree

CANARY_C = textwrap.dedent("""\
    #include <fcntl.h>
    #include <unistd.h>

    /* Runs when the object is loaded into any process: proof that it was. */
    __attribute__((constructor)) static void canary(void)
    {
        int fd = open(CANARY_PATH, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            (void)write(fd, "loaded\\n", 7);
            close(fd);
        }
    }
    """)


class Lab:
    """The files a hostile cflags list points at."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.src_dir = os.path.join(self.tmp, "src")
        os.mkdir(self.src_dir, 0o700)
        self.src = os.path.join(self.src_dir, "twin.c")
        shutil.copyfile(os.path.join(TESTDATA, "counter_twin.c"), self.src)
        os.chmod(self.src, 0o600)
        self.canary = os.path.join(self.tmp, "canary-loaded")
        self.so = os.path.join(self.tmp, "canary.so")
        c_file = os.path.join(self.tmp, "canary.c")
        with open(c_file, "w") as handle:
            handle.write(CANARY_C)
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", self.so, "-DCANARY_PATH=%s" % json.dumps(self.canary),
                        c_file], check=True, capture_output=True)
        self.out = os.path.join(self.tmp, "written")  # where the writing flags aim
        os.mkdir(self.out, 0o700)
        self.rsp = os.path.join(self.tmp, "flags.rsp")
        with open(self.rsp, "w") as handle:
            handle.write("-MJ %s\n" % os.path.join(self.out, "from-rsp.json"))
        self.cfg = os.path.join(self.tmp, "plugin.cfg")
        with open(self.cfg, "w") as handle:
            handle.write("-fplugin=%s\n" % self.so)
        self.secret = os.path.join(self.tmp, "secret.txt")
        with open(self.secret, "w") as handle:
            handle.write("".join("int secret_line_%02d = ;\n" % n for n in range(40)))

    def at(self, name):
        return os.path.join(self.out, name)

    def evidence(self):
        """Everything a loaded object or a written flag would leave."""
        return {"canary": os.path.exists(self.canary), "written": sorted(os.listdir(self.out)),
                "src_dir": sorted(os.listdir(self.src_dir)), "tmp": sorted(os.listdir(self.tmp))}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening-flags")
    with fresh_host(tmp) as host:
        w = World(host, tmp)
        os.mkdir(w.other_bpffs, 0o700)  # World watches these; here they stay empty
        os.mkdir(w.foreign_bpffs, 0o700)
        try:
            host.plugin("counter", "counter.c")
            host.plugin("dropper", "dropper.c")
            host.run("dispatcher", **w.main())
            w.flags = Lab(tmp)
            w.traffic_still_flows()
            yield w
        finally:
            for path in (w.other_bpffs, w.foreign_bpffs):
                if os.path.isdir(path):
                    os.rmdir(path)


def test_the_canary_proves_a_load(world, tmp_path):
    """The oracle: loading the object into a process writes the canary."""
    lab = world.flags
    subprocess.run([sys.executable, "-c", "import ctypes; ctypes.CDLL(%r)" % lab.so], check=True)
    assert os.path.exists(lab.canary)
    os.unlink(lab.canary)


CASES = [
    ("fplugin", lambda f: ["-fplugin=" + f.so], ["'-fplugin=", "loads code"]),
    ("xclang-load", lambda f: ["-Xclang", "-load", "-Xclang", f.so], ["'-Xclang'", "past this check"]),
    ("fpass-plugin", lambda f: ["-fpass-plugin=" + f.so], ["'-fpass-plugin=", "loads code"]),
    ("config-file", lambda f: ["--config=" + f.cfg], ["'--config=", "loads code"]),
    ("response-file", lambda f: ["@" + f.rsp], ["response file"]),
    ("response-file-as-value", lambda f: ["-D", "@" + f.rsp], ["response file"]),
    ("mj", lambda f: ["-MJ", f.at("mj.json")], ["'-MJ'", "writes a file"]),
    ("time-trace", lambda f: ["-ftime-trace=" + f.at("trace.json")], ["'-ftime-trace=", "writes a file"]),
    ("save-temps", lambda f: ["-save-temps=cwd"], ["'-save-temps=cwd'", "writes a file"]),
    ("wp-md", lambda f: ["-Wp,-MD," + f.at("deps.d")], ["'-Wp,-MD,", "past this check"]),
    ("mllvm", lambda f: ["-mllvm", "-info-output-file=" + f.at("info.txt"), "-mllvm", "-stats"],
     ["'-mllvm'", "past this check"]),
    ("crash-diagnostics-dir", lambda f: ["-fcrash-diagnostics-dir=" + f.out], ["writes a file"]),
    ("profile", lambda f: ["-fprofile-instr-generate=" + f.at("prof")], ["writes a file"]),
    ("extra-input", lambda f: [f.src], ["one more input file"]),
    ("unknown-flag", lambda f: ["-fno-such-flag-dpt"], ["'-fno-such-flag-dpt'", "not on the allow-list"]),
]


@pytest.mark.parametrize("case_id,flags,words", CASES, ids=[c[0] for c in CASES])
def test_flags_that_load_or_write_are_refused_and_change_nothing(world, case_id, flags, words):
    host, lab = world.host, world.flags
    before = snapshot(host, world.interfaces)
    watched = world.watched()
    evidence = lab.evidence()
    res = host.run("datapath_plugin", _fail=True, name="twin", src=lab.src, cflags=flags(lab))
    msg = res["msg"]
    missing = [w for w in words if w not in msg]
    assert not missing, "message lacks %s: %s" % (missing, msg)
    assert lab.evidence() == evidence, "a flag escaped: %s -> %s" % (evidence, lab.evidence())
    assert diff_snapshots(before, snapshot(host, world.interfaces)) == []
    assert world.watched() == watched
    world.traffic_still_flows()


def test_an_included_file_is_not_echoed_into_the_message(world):
    """-include of a file that is not C: the run fails with clang's first errors
    (file:line), never the whole file, in msg, log or log_tail."""
    host, lab = world.host, world.flags
    before = snapshot(host, world.interfaces)
    res = host.run("datapath_plugin", _fail=True, name="twin", src=lab.src, cflags=["-include", lab.secret])
    assert "clang could not compile" in res["msg"] and "%s:1:" % lab.secret in res["msg"], res["msg"]
    for field in ("msg", "log", "log_tail"):
        text = res.get(field, "")
        echoed = [n for n in range(40) if "secret_line_%02d" % n in text]
        assert len(echoed) <= 3, "%s echoes %d lines of the file: %s" % (field, len(echoed), text)
        assert len(text) < 6000, field
    assert diff_snapshots(before, snapshot(host, world.interfaces)) == []
    world.traffic_still_flows()


def test_allowed_flags_still_build_a_plugin(world):
    """Preprocessing and code-generation flags pass: a plugin built with them is
    installed, and removed again."""
    host, lab = world.host, world.flags
    header = os.path.join(lab.tmp, "knob.h")
    with open(header, "w") as handle:
        handle.write("#define KNOB 1\n")
    flags = ["-include", header, "-DEXTRA=1", "-UEXTRA", "-I", lab.tmp, "-Wall", "-Wno-unused-variable", "-O2",
             "-g", "-std=gnu11", "-mcpu=v3", "-fno-builtin"]
    evidence = lab.evidence()
    res = host.run("datapath_plugin", name="twin", src=lab.src, cflags=flags)
    assert res["changed"] and "count" in res["plugin"]["functions"]
    host.run("datapath_plugin", name="twin", state="absent")
    assert lab.evidence() == evidence
    assert tree(os.path.join(host.bpffs_root, "plugins", "twin")) is None
    world.traffic_still_flows()


def test_a_plugin_with_linux_if_h_and_the_collection_header_installs(world):
    """<linux/if.h> (glibc's headers under -target bpf) and <ebpf_datapath.h>
    with no include_dirs: the module builds and installs the plugin (issue 13)."""
    host, lab = world.host, world.flags
    src = os.path.join(lab.tmp, "ifname.c")
    with open(src, "w") as handle:
        handle.write('#include <linux/if.h>\n#include <ebpf_datapath.h>\n'
                     'SEC("tc") int ifname_len(struct __sk_buff *skb)\n'
                     '{ return IFNAMSIZ == 16 ? DP_CONTINUE : 2; }\n'
                     'char LICENSE[] SEC("license") = "GPL";\n')
    os.chmod(src, 0o600)
    res = host.run("datapath_plugin", name="ifname", src=src)
    assert res["changed"] and res["plugin"]["functions"] == ["ifname_len"], res
    host.run("datapath_plugin", name="ifname", state="absent")
    world.traffic_still_flows()
