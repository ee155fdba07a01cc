# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""toolchain.py with the real clang: argv, cache hits and misses, diagnostics.

"clang did not run" is proven by counting, twice over: ``clang_runs`` on the
instance, and a log written by a wrapper script that stands in for clang (it
appends its argv to a file and execs the real clang-19), which also sees the
compiles of other Toolchain instances and of other processes.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
BUILD = os.path.join(ROOT, "build")
if BUILD not in sys.path:  # tests/conftest.py does this too once it exists
    sys.path.insert(0, BUILD)

from ansible_collections.ebpf.datapath.plugins.module_utils import bitcode_join  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils import clang_run  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils import toolchain as tc  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import (  # noqa: E402
    CompileError, Toolchain, ToolchainError, find_clang)
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess  # noqa: E402

RUNNER_IMPORT = "from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess"
REAL_CLANG = find_clang(run_subprocess).path

PROGRAM = textwrap.dedent("""\
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>
    #include "knobs.h"

    #ifndef VERDICT
    #define VERDICT 0
    #endif

    SEC("tc")
    int count_and_pass(struct __sk_buff *skb)
    {
        return VERDICT + KNOB;
    }

    char LICENSE[] SEC("license") = "GPL";
    """)


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = BUILD + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def project(tmp_path):
    """A plugin source with a local header, and an empty cache dir."""
    src_dir = tmp_path / "plugin"
    src_dir.mkdir()
    (src_dir / "knobs.h").write_text("#define KNOB 0\n")
    src = src_dir / "prog.c"
    src.write_text(PROGRAM)
    return {"src": str(src), "header": src_dir / "knobs.h", "cache": str(tmp_path / "cache"), "tmp": tmp_path}


def make_wrapper(tmp_path, sleep_on_compile=0.0):
    """An executable 'clang' that logs every argv (one JSON line) and execs clang-19."""
    log = tmp_path / "clang-calls.log"
    wrapper = tmp_path / "clang-wrapper"
    wrapper.write_text(textwrap.dedent("""\
        #!{python}
        import json, os, sys, time
        with open({log!r}, "a") as handle:
            handle.write(json.dumps(sys.argv[1:]) + "\\n")
        if "-c" in sys.argv and {sleep!r}:
            time.sleep({sleep!r})
        os.execv({clang!r}, [{clang!r}] + sys.argv[1:])
        """).format(python=sys.executable, log=str(log), clang=REAL_CLANG, sleep=sleep_on_compile))
    wrapper.chmod(0o755)
    return str(wrapper), log


def compiles_logged(log):
    """How many times the wrapper was asked to compile (probes like --version excluded)."""
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if "-c" in json.loads(line))


def program_names(path):
    with bpf_object.BpfObject.open_file(path) as obj:
        return sorted(p.name for p in obj.programs())


def cache_objects(cache):
    found = []
    for dirpath, _dirnames, files in os.walk(cache):
        found.extend(os.path.join(dirpath, f) for f in files if f.endswith(".o"))
    return found


def tmp_leftovers(cache):
    return [os.path.join(d, f) for d, _dirnames, files in os.walk(cache) for f in files if f.startswith(".tmp-")]


# ---------------------------------------------------------------------------
# finding clang

def test_find_clang_picks_a_working_bpf_clang():
    info = find_clang(run_subprocess)
    assert info.major >= tc.MIN_CLANG_MAJOR
    assert os.path.isabs(info.path) and os.access(info.path, os.X_OK)
    out = subprocess.run([info.path, "--version"], capture_output=True, text=True, check=True).stdout
    assert info.version in out and info.banner == out.splitlines()[0]
    # The newest candidate on PATH, by the version each one reports itself.
    majors = []
    for name in tc.CLANG_CANDIDATES:
        path = shutil.which(name)
        if path:
            banner = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
            majors.append(int(re.search(r"clang version (\d+)\.", banner).group(1)))
    assert info.major == max(majors)


def test_preferred_clang_wins_when_it_works_and_falls_back_when_not(tmp_path):
    wrapper, _log = make_wrapper(tmp_path)
    assert find_clang(run_subprocess, preferred=wrapper).path == wrapper
    assert find_clang(run_subprocess, preferred="/nonexistent/clang").path == REAL_CLANG


def test_missing_clang_says_what_to_install(tmp_path):
    with pytest.raises(ToolchainError) as err:
        Toolchain(str(tmp_path / "cache"), run_subprocess, clang="/nonexistent")
    assert "/nonexistent" in str(err.value)
    assert "apt-get install clang-19" in str(err.value)


def test_no_clang_on_path_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError) as err:
        find_clang(run_subprocess)
    assert "apt-get install clang-19" in str(err.value)
    assert "no usable clang" in str(err.value)


def test_a_program_that_is_not_clang_is_refused(tmp_path):
    fake = tmp_path / "clang-fake"
    fake.write_text("#!%s\nprint('gcc (Debian 12.2.0-14) 12.2.0')\n" % sys.executable)
    fake.chmod(0o755)
    with pytest.raises(ToolchainError) as err:
        Toolchain(str(tmp_path / "cache"), run_subprocess, clang=str(fake))
    assert "does not look like clang" in str(err.value)
    assert "apt-get install clang-19" in str(err.value)


def test_clang_is_probed_once_per_cache_not_once_per_process(tmp_path):
    """A module run is one process; the probe result kept in the cache dir spares
    each later run two clang starts. A changed clang binary is probed again."""
    wrapper, log = make_wrapper(tmp_path)
    cache = str(tmp_path / "cache")
    code = ("from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain; "
            "%s; "
            "print(Toolchain(%r, run_subprocess, clang=%r).clang.version)" % (RUNNER_IMPORT, cache, wrapper))
    probes = []
    for _run in range(3):
        out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True)
        assert out.stdout.strip() == find_clang(run_subprocess).version
        probes.append(len(log.read_text().splitlines()) if log.exists() else 0)
    assert probes[0] >= 1 and probes[1] == probes[0] and probes[2] == probes[0]
    os.utime(wrapper, None)  # a new clang (same path, new mtime): probed again
    with open(wrapper, "a") as handle:
        handle.write("# upgraded\n")
    subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True)
    assert len(log.read_text().splitlines()) > probes[0]


def test_a_refused_clang_is_not_started_again(tmp_path):
    """A binary whose --version says it is no usable clang (here: clang 11, too
    old) is remembered like a usable one: a later run, one process each, is
    refused with the same message without starting it. A clang that cannot be
    run at all is not remembered (that may pass next time)."""
    log = tmp_path / "old-clang.log"
    old = tmp_path / "clang-11"
    old.write_text("#!%s\nimport sys\nopen(%r, 'a').write('x\\n')\nprint('Debian clang version 11.0.1-2')\n"
                   % (sys.executable, str(log)))
    old.chmod(0o755)
    cache = str(tmp_path / "cache")
    code = ("from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain, ToolchainError; "
            "%s\ntry:\n    Toolchain(%r, run_subprocess, clang=%r)\nexcept ToolchainError as exc:\n    print(exc)"
            % (RUNNER_IMPORT, cache, str(old)))
    said = [subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True,
                           check=True).stdout for _run in range(3)]
    assert "is version 11.0.1; BPF objects need clang >= 14" in said[0] and said[1] == said[2] == said[0]
    assert log.read_text().count("x") == 1
    broken = tmp_path / "clang-broken"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    for _run in range(2):
        with pytest.raises(ToolchainError, match="does not run"):
            Toolchain(cache, run_subprocess, clang=str(broken))
        tc._probe_cache.clear()  # as a new process would start
    assert "clang-broken" not in json.dumps(tc._load_probe_file())


# ---------------------------------------------------------------------------
# argv

def test_argv_is_a_list_for_bpf_with_arch_and_collection_includes(project):
    toolchain = Toolchain(project["cache"], run_subprocess)
    out = str(project["tmp"] / "out.o")
    res = toolchain.compile(project["src"], include_dirs=[str(project["tmp"])], defines={"VERDICT": 2},
                            cflags=["-Wall"], out_path=out)
    argv = res.argv
    assert argv[0] == toolchain.clang.path
    assert argv[1:6] == ["-target", "bpf", "-g", "-O2", "-mcpu=v3"]
    assert "-I" + tc.arch_include_dir(run_subprocess) in argv
    triplet = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert tc.arch_include_dir(run_subprocess) == "/usr/include/" + triplet
    assert os.path.isfile(os.path.join(tc.arch_include_dir(run_subprocess), "asm", "types.h"))
    assert "-I" + tc.shipped_include_dir(project["cache"]) in argv
    assert "-I" + str(project["tmp"]) in argv
    assert argv.index("-DVERDICT=2") < argv.index("-Wall") < argv.index("-c")
    assert argv[-4:] == ["-c", project["src"], "-o", out]
    assert res.object_path == out
    assert program_names(out) == ["count_and_pass"]


def test_collection_header_needs_no_include_dir(tmp_path):
    src = tmp_path / "hook.c"
    src.write_text('#include <ebpf_datapath.h>\nSEC("tc") int h(struct __sk_buff *s) { return DP_CONTINUE; }\n'
                   'char LICENSE[] SEC("license") = "GPL";\n')
    res = Toolchain(str(tmp_path / "cache"), run_subprocess).compile(str(src))
    assert program_names(res.object_path) == ["h"]


@pytest.mark.parametrize("flag", ["-o", "-c", "-MD", "-MF", "-E", "-target", "--target=x86_64"])
def test_cflags_that_change_the_output_are_refused(project, flag):
    toolchain = Toolchain(project["cache"], run_subprocess)
    with pytest.raises(ToolchainError) as err:
        toolchain.compile(project["src"], cflags=[flag, "x"])
    assert repr(flag) in str(err.value)
    assert toolchain.clang_runs == 0


def test_cflags_as_a_string_are_refused(project):
    with pytest.raises(ToolchainError):
        Toolchain(project["cache"], run_subprocess).compile(project["src"], cflags="-Wall -Werror")


def test_define_names_must_be_identifiers(project):
    with pytest.raises(ToolchainError):
        Toolchain(project["cache"], run_subprocess).compile(project["src"], defines={"A B": "1"})


# ---------------------------------------------------------------------------
# cache

def test_cache_hit_does_not_run_clang(project):
    toolchain = Toolchain(project["cache"], run_subprocess)
    first = toolchain.compile(project["src"])
    second = toolchain.compile(project["src"])
    assert toolchain.clang_runs == 1
    assert (first.cached, second.cached) == (False, True)
    assert first.sha256 == second.sha256
    assert first.object_path == second.object_path
    assert program_names(second.object_path) == ["count_and_pass"]


def test_cache_hit_across_instances_and_processes(project):
    wrapper, log = make_wrapper(project["tmp"])
    one = Toolchain(project["cache"], run_subprocess, clang=wrapper)
    first = one.compile(project["src"])
    assert compiles_logged(log) == 1

    two = Toolchain(project["cache"], run_subprocess, clang=wrapper)
    second = two.compile(project["src"], out_path=str(project["tmp"] / "two.o"))
    assert two.clang_runs == 0 and second.cached
    assert compiles_logged(log) == 1

    script = ("import json, sys\n"
              "from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain\n"
              + RUNNER_IMPORT + "\n"
              "t = Toolchain(sys.argv[1], run_subprocess, clang=sys.argv[2])\n"
              "r = t.compile(sys.argv[3])\n"
              "print(json.dumps({'cached': r.cached, 'sha256': r.sha256, 'runs': t.clang_runs}))\n")
    proc = subprocess.run([sys.executable, "-c", script, project["cache"], wrapper, project["src"]],
                          capture_output=True, text=True, env=child_env(), timeout=120, check=True)
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    assert other == {"cached": True, "sha256": first.sha256, "runs": 0}
    # One compile for three builds of the same source, in two processes.
    assert compiles_logged(log) == 1


def test_changed_header_is_a_miss_and_the_old_entry_stays(project):
    toolchain = Toolchain(project["cache"], run_subprocess)
    base = toolchain.compile(project["src"])
    project["header"].write_text("#define KNOB 1\n")
    changed = toolchain.compile(project["src"])
    assert not changed.cached and toolchain.clang_runs == 2
    assert changed.sha256 != base.sha256
    # Putting the header back finds the first entry again.
    project["header"].write_text("#define KNOB 0\n")
    again = toolchain.compile(project["src"])
    assert again.cached and again.sha256 == base.sha256 and toolchain.clang_runs == 2


def test_changed_define_is_a_miss(project):
    toolchain = Toolchain(project["cache"], run_subprocess)
    one = toolchain.compile(project["src"], defines={"VERDICT": 1})
    two = toolchain.compile(project["src"], defines={"VERDICT": 2})
    assert not two.cached and toolchain.clang_runs == 2
    assert one.sha256 != two.sha256
    assert toolchain.compile(project["src"], defines={"VERDICT": 1}).cached
    assert toolchain.clang_runs == 2


def test_changed_source_and_changed_cflags_are_misses(project):
    toolchain = Toolchain(project["cache"], run_subprocess)
    toolchain.compile(project["src"])
    assert not toolchain.compile(project["src"], cflags=["-Wall"]).cached
    with open(project["src"], "a") as handle:
        handle.write("\n/* edited */\n")
    assert not toolchain.compile(project["src"]).cached
    assert toolchain.clang_runs == 3


def test_header_names_with_spaces_hash_and_dollar_are_tracked(tmp_path):
    """clang escapes these in its dependency file; a wrong parse would miss the header."""
    odd = tmp_path / "odd dir"
    odd.mkdir()
    header = odd / "we ird#1 $x.h"
    header.write_text("#define ODD 1\n")
    src = tmp_path / "odd.c"
    src.write_text('#include "odd dir/we ird#1 $x.h"\nint odd = ODD;\n')
    toolchain = Toolchain(str(tmp_path / "cache"), run_subprocess)
    toolchain.compile(str(src))
    assert toolchain.compile(str(src)).cached
    header.write_text("#define ODD 2\n")
    assert not toolchain.compile(str(src)).cached
    assert toolchain.clang_runs == 2


def test_out_path_is_a_copy_not_the_cache_entry(project):
    toolchain = Toolchain(project["cache"], run_subprocess)
    out = project["tmp"] / "mine.o"
    res = toolchain.compile(project["src"], out_path=str(out))
    out.write_bytes(b"scribbled over")
    again = toolchain.compile(project["src"], out_path=str(project["tmp"] / "again.o"))
    assert again.cached and again.sha256 == res.sha256
    assert program_names(again.object_path) == ["count_and_pass"]


def test_a_damaged_cache_entry_is_rebuilt_not_served(project):
    toolchain = Toolchain(project["cache"], run_subprocess)
    res = toolchain.compile(project["src"])
    os.chmod(res.object_path, 0o600)
    with open(res.object_path, "r+b") as handle:
        handle.write(b"\0" * 16)
    again = toolchain.compile(project["src"])
    assert not again.cached and toolchain.clang_runs == 2
    assert again.sha256 == res.sha256
    assert program_names(again.object_path) == ["count_and_pass"]


def test_concurrent_compiles_never_see_a_partial_object(project):
    """Four processes fill an empty cache with the same source at once."""
    script = ("import json, sys\n"
              "from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain\n"
              + RUNNER_IMPORT + "\n"
              "r = Toolchain(sys.argv[1], run_subprocess).compile(sys.argv[2], out_path=sys.argv[3])\n"
              "print(json.dumps({'sha256': r.sha256}))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, project["cache"], project["src"],
                               str(project["tmp"] / ("p%d.o" % i))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
             for i in range(4)]
    digests = set()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        digests.add(json.loads(out.strip().splitlines()[-1])["sha256"])
    assert len(digests) == 1
    for i in range(4):
        assert program_names(str(project["tmp"] / ("p%d.o" % i))) == ["count_and_pass"]
    assert len(cache_objects(project["cache"])) == 1
    assert tmp_leftovers(project["cache"]) == []


# ---------------------------------------------------------------------------
# errors

def test_syntax_error_is_a_compile_error_with_file_line_col(tmp_path):
    src = tmp_path / "broken.c"
    src.write_text("int ok(void) { return 0; }\n"
                   "int bad(void)\n"
                   "{\n"
                   "    return 1 +;\n"
                   "}\n")
    toolchain = Toolchain(str(tmp_path / "cache"), run_subprocess)
    with pytest.raises(CompileError) as err:
        toolchain.compile(str(src))
    exc = err.value
    assert "%s:4:15: error:" % src in exc.diagnostics
    assert str(exc) == exc.diagnostics
    assert exc.argv[0] == toolchain.clang.path and str(src) in exc.argv
    assert isinstance(exc, ToolchainError)
    # Nothing half-made is left behind, and a failure is not cached.
    assert cache_objects(str(tmp_path / "cache")) == []
    assert tmp_leftovers(str(tmp_path / "cache")) == []
    with pytest.raises(CompileError):
        toolchain.compile(str(src))
    assert toolchain.clang_runs == 2


def test_warnings_are_returned_and_kept_for_cache_hits(tmp_path):
    src = tmp_path / "warn.c"
    src.write_text("int f(void) { int unused; return 0; }\n")
    toolchain = Toolchain(str(tmp_path / "cache"), run_subprocess)
    first = toolchain.compile(str(src), cflags=["-Wall"])
    assert "warn.c:1:19: warning: unused variable 'unused'" in first.warnings
    assert toolchain.compile(str(src), cflags=["-Wall"]).warnings == first.warnings


def test_clang_timeout_is_a_clear_error(project):
    wrapper, log = make_wrapper(project["tmp"], sleep_on_compile=30)
    toolchain = Toolchain(project["cache"], run_subprocess, clang=wrapper, timeout=1)
    with pytest.raises(CompileError) as err:
        toolchain.compile(project["src"])
    assert "did not finish within 1 s" in str(err.value)
    assert compiles_logged(log) == 1
    assert cache_objects(project["cache"]) == []


def test_missing_source_is_a_toolchain_error(tmp_path):
    with pytest.raises(ToolchainError) as err:
        Toolchain(str(tmp_path / "cache"), run_subprocess).compile(str(tmp_path / "nope.c"))
    assert "nope.c" in str(err.value)


# ---------------------------------------------------------------------------
# generated sources

def test_compile_source_text_caches_by_text_and_names_the_file(tmp_path):
    toolchain = Toolchain(str(tmp_path / "cache"), run_subprocess)
    text = PROGRAM.replace('#include "knobs.h"', "#define KNOB 0")
    first = toolchain.compile_source_text(text, "dispatcher")
    second = toolchain.compile_source_text(text, "dispatcher")
    assert (first.cached, second.cached, toolchain.clang_runs) == (False, True, 1)
    src = first.argv[first.argv.index("-c") + 1]
    assert src.startswith(str(tmp_path / "cache" / "src")) and src.endswith("/dispatcher.c")
    with open(src) as handle:
        assert handle.read() == text
    with pytest.raises(CompileError) as err:
        toolchain.compile_source_text("int x = ;\n", "gen.c")
    assert "/gen.c:1:9: error:" in err.value.diagnostics


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden"])
def test_compile_source_text_refuses_path_names(tmp_path, name):
    with pytest.raises(ToolchainError):
        Toolchain(str(tmp_path / "cache"), run_subprocess).compile_source_text("int x;\n", name)


# ---------------------------------------------------------------------------
# dependency file parsing

def test_parse_depfile():
    text = ("/c/.tmp-1.o: /s/a.c /usr/include/linux/bpf.h \\\n"
            "  /s/odd\\ dir/we\\ ird\\#1\\ $$x.h \\\n"
            "  rel/b.h\n")
    assert clang_run.parse_depfile(text) == ["/s/a.c", "/usr/include/linux/bpf.h", "/s/odd dir/we ird#1 $x.h", "rel/b.h"]


# ---------------------------------------------------------------------------
# cflags by allow-list, bounded output, a clean environment (issue 16)

ALLOWED = [
    ["-DKNOB_EXTRA=1"], ["-D", "KNOB_EXTRA"], ["-UKNOB_EXTRA"], ["-U", "KNOB_EXTRA"], ["-Wall"], ["-Wno-unused"],
    ["-Werror=return-type"], ["-w"], ["-O1"], ["-Os"], ["-g0"], ["-gdwarf-5"], ["-std=gnu11"], ["-mcpu=v4"],
    ["-mlittle-endian"], ["-fno-builtin"], ["-fno-jump-tables"], ["-fvisibility=hidden"], ["-fno-strict-aliasing"],
    ["-fmacro-backtrace-limit=4"], ["-nostdinc", "-isystem", "/usr/include"],
    ["-iquote", "/usr/include"], ["-idirafter", "/usr/include"], ["-include", "stddef.h"], ["-imacros", "stddef.h"],
    ["-pedantic"],
]


@pytest.mark.parametrize("flags", ALLOWED, ids=" ".join)
def test_allowed_cflags_reach_clang_and_compile(project, flags):
    toolchain = Toolchain(project["cache"], run_subprocess)
    res = toolchain.compile(project["src"], cflags=flags)
    assert toolchain.clang_runs == 1
    index = res.argv.index(flags[0])
    assert res.argv[index:index + len(flags)] == flags
    assert program_names(res.object_path) == ["count_and_pass"]


REFUSED = [
    (["-fplugin=/tmp/x.so"], "loads code"), (["-fpass-plugin=/tmp/x.so"], "loads code"),
    (["-Xclang", "-load", "-Xclang", "/tmp/x.so"], "past this check"), (["-mllvm", "-stats"], "past this check"),
    (["-Xlinker", "-x"], "past this check"), (["-Wp,-MD,/tmp/x.d"], "past this check"), (["-Wl,-x"], "past this check"),
    (["@/tmp/flags.rsp"], "response file"), (["-D", "@/tmp/flags.rsp"], "response file"),
    (["-MJ", "/tmp/x.json"], "writes a file"), (["-MJ/tmp/x.json"], "writes a file"), (["-MD"], "writes a file"),
    (["-save-temps=cwd"], "writes a file"), (["-save-temps"], "writes a file"),
    (["-ftime-trace=/tmp/x"], "writes a file"),
    (["-ftime-trace"], "writes a file"), (["-fprofile-instr-generate=/tmp/x"], "writes a file"),
    (["--serialize-diagnostics", "/tmp/x"], "writes a file"), (["-fcrash-diagnostics-dir=/tmp"], "writes a file"),
    (["-fmodules-cache-path=/tmp"], "writes a file"), (["-gsplit-dwarf"], "writes a file"),
    (["-o", "/tmp/x.o"], "writes a file"), (["-B/tmp"], "another program"), (["--config=/tmp/x.cfg"], "loads code"),
    (["-target", "x86_64"], "set by the toolchain"), (["-x", "c++"], "set by the toolchain"),
    (["-E"], "set by the toolchain"), (["/etc/hostname"], "input file"), (["-fno-such-flag-dpt"], "allow-list"),
    (["-include"], "needs a value"),
]


@pytest.mark.parametrize("flags,why", REFUSED, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_refused_cflags_name_the_flag_and_clang_never_runs(project, flags, why):
    toolchain = Toolchain(project["cache"], run_subprocess)
    with pytest.raises(ToolchainError) as err:
        toolchain.compile(project["src"], cflags=flags)
    msg = str(err.value)
    assert why in msg and any(repr(f) in msg for f in flags), msg
    assert toolchain.clang_runs == 0


def test_toolchain_errors_are_datapath_errors():
    from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
    assert issubclass(ToolchainError, DatapathError) and issubclass(CompileError, DatapathError)


def test_an_included_file_is_never_echoed_whole(tmp_path):
    """-include of a file that is not C: clang quotes it line by line, one error
    each; the message keeps the first error with file:line, never the whole file."""
    secret = tmp_path / "secret.txt"
    secret.write_text("".join("int secret_line_%02d = ;\n" % n for n in range(30)))
    src = tmp_path / "ok.c"
    src.write_text("int ok(void) { return 0; }\n")
    with pytest.raises(CompileError) as err:
        Toolchain(str(tmp_path / "cache"), run_subprocess).compile(str(src), cflags=["-include", str(secret)])
    exc = err.value
    for text in (str(exc), exc.diagnostics, exc.log):
        echoed = [n for n in range(30) if "secret_line_%02d" % n in text]
        assert echoed and len(echoed) <= clang_run.MAX_DIAGNOSTICS, text
        assert "%s:1:" % secret in text and "error:" in text
        assert len(text.splitlines()) <= clang_run.MAX_OUTPUT_LINES + 2 and len(text) <= clang_run.MAX_OUTPUT_BYTES + 400
    assert "output cut here" in exc.diagnostics


def test_bound_output_keeps_short_output_and_the_first_error():
    short = "a.c:1:2: warning: w\n"
    assert clang_run.bound_output(short) == short
    noise = "".join("a.c:%d:1: note: n\n" % n for n in range(100))
    cut = clang_run.bound_output(noise + "a.c:200:3: error: the real one\n")
    assert "a.c:200:3: error: the real one" in cut and len(cut.splitlines()) <= clang_run.MAX_OUTPUT_LINES + 2
    assert len(clang_run.bound_output("x" * 100000 + "\n")) < 1000


def test_the_environment_cannot_add_flags_or_logs(project, tmp_path, monkeypatch):
    """CCC_OVERRIDE_OPTIONS edits clang's argv; CC_PRINT_OPTIONS_FILE makes it
    write a log: neither reaches clang."""
    trace = tmp_path / "trace.json"
    log = tmp_path / "options.log"
    planted = {"CCC_OVERRIDE_OPTIONS": "+-ftime-trace=%s" % trace, "CC_PRINT_OPTIONS": "1",
               "CC_PRINT_OPTIONS_FILE": str(log)}
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    toolchain = Toolchain(project["cache"], run_subprocess)
    toolchain.compile(project["src"])
    assert toolchain.clang_runs == 1
    assert not trace.exists() and not log.exists()
    # The toolchain scrubbed them from this process (what every runner passes on).
    assert not set(planted) & set(os.environ)
    # The oracle: the same variables do reach a clang started with them.
    subprocess.run([toolchain.clang.path, "-target", "bpf", "-c", project["src"], "-o", str(tmp_path / "x.o"),
                    "-I" + tc.arch_include_dir(run_subprocess), "-I" + os.path.dirname(project["src"])],
                   capture_output=True, check=True, env=dict(os.environ, **planted))
    assert trace.exists() and log.exists()


def test_a_crashing_clang_writes_no_reproducer(project):
    assert "-fno-crash-diagnostics" in Toolchain(project["cache"], run_subprocess).compile(project["src"]).argv


# ---------------------------------------------------------------------------
# headers every compile can include (issue 13)

def test_the_shipped_header_is_the_collections_header():
    with open(os.path.join(ROOT, "bpf", "include", "ebpf_datapath.h")) as handle:
        assert tc.SHIPPED_HEADERS["ebpf_datapath.h"] == handle.read(), (
            "bpf/include/ebpf_datapath.h changed: run scripts/ship-headers.py")


def test_shipped_headers_are_rewritten_when_damaged_and_keyed_by_content(tmp_path):
    cache = str(tmp_path / "cache")
    path = tc.shipped_include_dir(cache)
    header = os.path.join(path, "ebpf_datapath.h")
    with open(header, "w") as handle:
        handle.write("#error damaged\n")
    assert tc.shipped_include_dir(cache) == path
    with open(header) as handle:
        assert handle.read() == tc.SHIPPED_HEADERS["ebpf_datapath.h"]
    assert stat_mode(path) == 0o700 and stat_mode(header) == 0o600


def stat_mode(path):
    return os.stat(path).st_mode & 0o777


HOOK_WITH_HEADER = ('#include <ebpf_datapath.h>\nSEC("tc") int h(struct __sk_buff *s) '
                    '{ return dp_remote_identity(s) ? 1 : DP_CONTINUE; }\nchar LICENSE[] SEC("license") = "GPL";\n')


def test_the_header_is_there_when_the_modules_run_from_a_zip(tmp_path):
    """As Ansible ships module_utils (AnsiballZ: a zip, no bpf/include next to
    it): a plugin including <ebpf_datapath.h> still compiles."""
    import zipfile
    bundle = str(tmp_path / "ansiballz.zip")
    with zipfile.ZipFile(bundle, "w") as zf:
        for pkg in ("ansible_collections", "ansible_collections/ebpf", "ansible_collections/ebpf/datapath",
                    "ansible_collections/ebpf/datapath/plugins"):
            zf.writestr(pkg + "/__init__.py", "")
        for part in ("module_utils", "plugin_utils"):  # plugin_utils: the runner the test passes
            base = os.path.join(ROOT, "plugins", part)
            for name in os.listdir(base):
                if name.endswith(".py"):
                    zf.write(os.path.join(base, name), "ansible_collections/ebpf/datapath/plugins/%s/%s" % (part, name))
    src = tmp_path / "hook.c"
    src.write_text(HOOK_WITH_HEADER)
    code = ("import sys; sys.path.insert(0, %r); "
            "from ansible_collections.ebpf.datapath.plugins.module_utils import toolchain as tc; "
            "assert tc.__file__.startswith(%r), tc.__file__; "
            "assert not __import__('os').path.isdir(tc.COLLECTION_INCLUDE); "
            "from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess; "
            "print(tc.Toolchain(%r, run_subprocess).compile(%r).object_path)"
            % (bundle, bundle, str(tmp_path / "cache"), str(src)))
    env = dict((k, v) for k, v in os.environ.items() if k != "PYTHONPATH")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(tmp_path),
                         check=False)
    assert out.returncode == 0, out.stderr
    assert program_names(out.stdout.strip()) == ["h"]


def test_linux_if_h_compiles_with_glibc_headers(tmp_path):
    """<linux/if.h> reaches glibc's <gnu/stubs.h>, which under -target bpf asks
    for <gnu/stubs-32.h> (Debian: only in libc6-dev-i386). It compiles here
    whether that package is installed or not."""
    src = tmp_path / "ifname.c"
    src.write_text('#include <linux/if.h>\n#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                   'SEC("tc") int h(struct __sk_buff *s) { return IFNAMSIZ == 16 ? 0 : 1; }\n'
                   'char LICENSE[] SEC("license") = "GPL";\n')
    res = Toolchain(str(tmp_path / "cache"), run_subprocess).compile(str(src))
    assert program_names(res.object_path) == ["h"]
    # The oracle: without the shipped stubs, clang stops where the issue said.
    stubs_32 = os.path.join(tc.arch_include_dir(run_subprocess), "gnu", "stubs-32.h")
    if not os.path.exists(stubs_32):
        clang = Toolchain(str(tmp_path / "cache"), run_subprocess).clang.path
        bare = subprocess.run([clang, "-target", "bpf", "-I" + tc.arch_include_dir(run_subprocess), "-c", str(src), "-o",
                               str(tmp_path / "bare.o")], capture_output=True, text=True, check=False)
        assert bare.returncode != 0 and "gnu/stubs-32.h" in bare.stderr


# ---------------------------------------------------------------------------
# bitcode and joined modules (inline mode's steps; inline_build.py)

HOOK_LIB = textwrap.dedent("""\
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>

    __attribute__((noinline)) int hook(struct __sk_buff *skb)
    {
        return skb->len > 100 ? 2 : -1;
    }

    __attribute__((noinline)) int other(struct __sk_buff *skb)
    {
        return 3;
    }
    """)

HOOK_CALLER = textwrap.dedent("""\
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>

    extern int hook(struct __sk_buff *skb);

    SEC("tc")
    int prog(struct __sk_buff *skb)
    {
        int verdict = hook(skb);

        return verdict == -1 ? 0 : verdict;
    }

    char LICENSE[] SEC("license") = "GPL";
    """)

BIG_STACK = textwrap.dedent("""\
    #include <linux/bpf.h>
    #include <bpf/bpf_helpers.h>

    SEC("tc")
    int big(struct __sk_buff *skb)
    {
        volatile char buf[1024];

        buf[skb->len & 1023] = 1;
        return buf[skb->mark & 1023];
    }
    """)


def btf_functions(path):
    with bpf_btf.Btf.from_elf(path) as btf:
        return sorted(f.name for f in btf.functions())


@pytest.fixture
def modules(tmp_path):
    """Bitcode of a caller and of a library that defines the function it calls."""
    (tmp_path / "lib.c").write_text(HOOK_LIB)
    (tmp_path / "caller.c").write_text(HOOK_CALLER)
    toolchain = Toolchain(str(tmp_path / "cache"), run_subprocess)
    caller = toolchain.compile(str(tmp_path / "caller.c"), bitcode=True)
    lib = toolchain.compile(str(tmp_path / "lib.c"), bitcode=True)
    return toolchain, [(caller.object_path, caller.sha256), (lib.object_path, lib.sha256)]


def test_bitcode_is_llvm_bitcode_cached_apart_from_the_object(project):
    toolchain = Toolchain(project["cache"], run_subprocess)
    first = toolchain.compile(project["src"], bitcode=True)
    with open(first.object_path, "rb") as handle:
        assert handle.read(4) == b"BC\xc0\xde"
    assert first.object_path.endswith(".bc") and "-emit-llvm" in first.argv
    assert toolchain.compile(project["src"], bitcode=True).cached
    obj = toolchain.compile(project["src"])
    assert not obj.cached and obj.object_path.endswith(".o") and toolchain.clang_runs == 2
    assert program_names(obj.object_path) == ["count_and_pass"]


def test_llvm_tools_come_from_clangs_own_directory(tmp_path):
    toolchain = Toolchain(str(tmp_path / "cache"), run_subprocess)
    llvm_bin = os.path.dirname(os.path.realpath(toolchain.clang.path))
    for name in bitcode_join.JOIN_TOOLS:
        assert toolchain.llvm_tool(name) == os.path.join(llvm_bin, name)
    with pytest.raises(ToolchainError) as caught:
        toolchain.llvm_tool("llvm-no-such-tool")
    assert "apt-get install llvm-%d" % toolchain.clang.major in str(caught.value)


def test_join_inlines_the_named_function_and_keeps_every_other_symbol(modules):
    toolchain, parts = modules
    joined = toolchain.join_bitcode(parts, inline=["hook"])
    assert not joined.cached and toolchain.llvm_runs == 4
    # hook is gone as a function (inlined, then deleted), other is kept global.
    assert btf_functions(joined.object_path) == ["other", "prog"]
    assert "prog" in program_names(joined.object_path)
    # Without inlining, the same modules make a program that calls hook.
    plain = toolchain.join_bitcode(parts)
    assert btf_functions(plain.object_path) == ["hook", "other", "prog"]
    assert plain.sha256 != joined.sha256


def test_a_join_is_cached_by_its_inputs_and_a_rerun_starts_no_tool(modules, tmp_path):
    toolchain, parts = modules
    first = toolchain.join_bitcode(parts, inline=["hook"])
    runs = toolchain.llvm_runs
    again = Toolchain(toolchain.cache_dir, run_subprocess).join_bitcode(parts, inline=["hook"],
                                                                        out_path=str(tmp_path / "copy.o"))
    assert again.cached and again.sha256 == first.sha256 and toolchain.llvm_runs == runs
    assert again.object_path == str(tmp_path / "copy.o")
    # Another cpu, another order of the modules: other entries.
    assert not toolchain.join_bitcode(parts, inline=["hook"], cpu="v2").cached
    assert not toolchain.join_bitcode(list(reversed(parts)), inline=["hook"]).cached


def test_a_damaged_join_entry_is_rebuilt(modules):
    toolchain, parts = modules
    first = toolchain.join_bitcode(parts, inline=["hook"])
    with open(first.object_path, "ab") as handle:
        handle.write(b"garbage")
    again = toolchain.join_bitcode(parts, inline=["hook"])
    assert not again.cached and again.sha256 == first.sha256


def test_join_refuses_a_symbol_no_module_defines(modules):
    toolchain, parts = modules
    with pytest.raises(ToolchainError) as caught:
        toolchain.join_bitcode(parts, inline=["hook", "nowhere"])
    assert "cannot inline nowhere: no bitcode module given defines it" in str(caught.value)


@pytest.mark.parametrize("kwargs", [{"cpu": "v3; rm"}, {"cpu": ""}, {"inline": ["not a symbol"]}])
def test_join_refuses_bad_arguments_before_any_tool_runs(modules, kwargs):
    toolchain, parts = modules
    with pytest.raises(ToolchainError):
        toolchain.join_bitcode(parts, **kwargs)
    assert toolchain.llvm_runs == 0


def test_an_llc_refusal_is_a_compile_error_with_its_message(tmp_path):
    (tmp_path / "big.c").write_text(BIG_STACK)
    toolchain = Toolchain(str(tmp_path / "cache"), run_subprocess)
    bitcode = toolchain.compile(str(tmp_path / "big.c"), bitcode=True)  # the stack is codegen's business
    with pytest.raises(CompileError) as caught:
        toolchain.join_bitcode([(bitcode.object_path, bitcode.sha256)])
    assert caught.value.argv[0].endswith("llc") and "stack limit" in str(caught.value)
    assert not os.listdir(os.path.join(toolchain.cache_dir, "joined"))  # no entry, no work dir left


def test_parse_nm_names():
    out = ("---------------- T dp_dispatcher\n---------------- D dpp_a__counts\n"
           "---------------- T dp_dispatcher\n\n                 U bpf_helper\n")
    assert bitcode_join.parse_nm_names(out) == ["dp_dispatcher", "dpp_a__counts", "bpf_helper"]
