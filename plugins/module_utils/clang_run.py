# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running clang and the tools beside it, for toolchain.py: every command under
a time limit with the clang-influencing variables gone (``bounded``), the
probes that tell what a clang binary is, a compile that fills a cache entry,
clang's dependency file and its output bounded for messages.

Kept apart from toolchain.py, which finds the cache entry: a rerun whose
objects are all cached (and whose clang was probed before) starts no process
and never imports this file; under Ansible every imported file is compiled
again on every run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import tempfile
import time

from ansible_collections.ebpf.datapath.plugins.module_utils.files import (
    atomic_write, makedirs_private, remove_temp_files, sha256_file)
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import (
    _NO_CRASH_POINT, _STALE_TMP_SECONDS, _VERSION_RE, INSTALL_HINT, MIN_CLANG_MAJOR, PROBE_TIMEOUT, ClangInfo,
    CompileError, CompileResult, RefusedClang, ToolchainError, _unlink_quiet, deliver)


# How commands run. module_utils never start a process themselves (a module
# uses AnsibleModule.run_command: module_common.module_runner); whoever makes a
# Toolchain hands it a runner: run(argv, data=None, cwd=None) ->
# (rc, stdout bytes, stderr bytes), raising OSError when argv[0] cannot run.
# The controller, tests and benchmarks use plugins/plugin_utils/runner.py.
#
# Every command runs under coreutils' timeout (a runaway clang is killed), so
# the runners need no time limit of their own; and with the variables of
# _CLANG_ENV_PREFIXES gone from this process's environment (scrub_clang_env),
# which both runners pass on.
_TIMED_OUT = (124, 128 + 9)  # timeout(1): the limit passed; KILL after --kill-after


def _timeout_program():
    # From the system directories, not from whatever PATH the caller has.
    return shutil.which("timeout", path="/usr/bin:/bin") or "timeout"


def bounded(argv, timeout):
    """argv run with a time limit; the clang-influencing variables scrubbed first."""
    scrub_clang_env()
    return [_timeout_program(), "--kill-after=5", "%g" % timeout] + list(argv)


# The variables scrub_clang_env drops.
_CLANG_ENV_PREFIXES = ("CCC_", "CC_")


def scrub_clang_env():
    """Drop the variables that make clang's driver add arguments
    (CCC_OVERRIDE_OPTIONS) or write logs (CC_PRINT_OPTIONS_FILE,
    CC_LOG_DIAGNOSTICS_FILE, ...) from this process's environment, which every
    command it starts inherits: flags reach clang only through cflags.check_cflags.
    (A module run is its own process; on the controller, an Ansible worker.)"""
    for name in [n for n in os.environ if n.startswith(_CLANG_ENV_PREFIXES)]:
        del os.environ[name]


class _Proc:
    """What a probe saw: returncode, stdout and stderr as text."""

    def __init__(self, rc, out, err):
        self.returncode = rc
        self.stdout = out.decode("utf-8", "replace")
        self.stderr = err.decode("utf-8", "replace")


def run_probe(run, argv, stdin_text=None):
    """(_Proc, None) of a probe that answered, or (None, why not)."""
    try:
        rc, out, err = run(bounded(argv, PROBE_TIMEOUT), data=stdin_text)
    except OSError as exc:
        return None, str(exc)
    if rc in _TIMED_OUT:
        return None, "no answer within %d s" % PROBE_TIMEOUT
    return _Proc(rc, out, err), None


def probe_uncached(run, path):
    """ClangInfo of the clang at path, asked with --version and -print-targets;
    RefusedClang when its answer shows it is no usable clang, ToolchainError
    when it cannot be run or has no BPF target."""
    proc, err = run_probe(run, [path, "--version"])
    if proc is None or proc.returncode != 0:
        raise ToolchainError("clang '%s' does not run (%s); install clang (%s)"
                             % (path, err or (proc.stderr.strip() or "exit %d" % proc.returncode), INSTALL_HINT))
    banner = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
    match = _VERSION_RE.search(proc.stdout)
    if not match:
        raise RefusedClang("'%s' does not look like clang (--version said %r); install clang (%s)"
                           % (path, banner, INSTALL_HINT))
    major = int(match.group(1))
    version = "%s.%s.%s" % (match.group(1), match.group(2), match.group(3) or "0")
    if major < MIN_CLANG_MAJOR:
        raise RefusedClang("clang '%s' is version %s; BPF objects need clang >= %d (%s)"
                           % (path, version, MIN_CLANG_MAJOR, INSTALL_HINT))
    if not supports_bpf(run, path):
        raise ToolchainError("clang '%s' (%s) was built without the BPF target; install a clang "
                             "with it (%s)" % (path, version, INSTALL_HINT))
    return ClangInfo(path, version, major, banner)


def supports_bpf(run, path):
    proc, _err = run_probe(run, [path, "-print-targets"])
    if proc is not None and proc.returncode == 0:
        return any(line.split()[:1] == ["bpf"] for line in proc.stdout.splitlines())
    # Fall back to a trivial compile when -print-targets is not understood.
    proc, _err = run_probe(run, [path, "-target", "bpf", "-x", "c", "-c", "-", "-o", os.devnull],
                           stdin_text="int dp_probe;\n")
    return proc is not None and proc.returncode == 0


def parse_depfile(text):
    """Prerequisites of a make-style dependency file as clang writes it
    (``out.o: a.c b.h \\`` continuation lines, ``\\ `` for a space in a name)."""
    text = text.replace("\\\r\n", " ").replace("\\\n", " ")
    tokens = []
    current = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in " #":
            current.append(text[i + 1])
            i += 2
            continue
        if char == "$" and text[i + 1:i + 2] == "$":
            current.append("$")
            i += 2
            continue
        if char.isspace():
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
        i += 1
    if current:
        tokens.append("".join(current))
    # Drop the target: everything up to the token that ends with ':'.
    for index, token in enumerate(tokens):
        if token.endswith(":"):
            return tokens[index + 1:]
    return tokens


# ---------------------------------------------------------------------------
# bounded compiler output

MAX_DIAGNOSTICS = 3
MAX_OUTPUT_LINES = 25
MAX_OUTPUT_BYTES = 4096
MAX_LINE_BYTES = 300
_DIAGNOSTIC = re.compile(r"(:\d+:\d+: |^clang(-\d+)?: )(fatal error|error|warning): ")


def bound_output(text):
    """clang's output cut after MAX_DIAGNOSTICS errors or warnings (each with the
    source line it quotes and its notes), MAX_OUTPUT_LINES lines and
    MAX_OUTPUT_BYTES bytes, each line to MAX_LINE_BYTES. ``-include`` of a file
    that is not C makes clang quote it line by line, one error per line: a
    message then shows its first lines, never the whole file. The first error
    with its file:line is always kept."""
    lines = text.splitlines()
    kept, size, seen, shortened = [], 0, 0, False
    for line in lines:
        if _DIAGNOSTIC.search(line):
            seen += 1
            if seen > MAX_DIAGNOSTICS:
                break
        if len(line) > MAX_LINE_BYTES:
            line, shortened = line[:MAX_LINE_BYTES] + " [...]", True
        if len(kept) >= MAX_OUTPUT_LINES or size + len(line) + 1 > MAX_OUTPUT_BYTES:
            break
        kept.append(line)
        size += len(line) + 1
    if len(kept) == len(lines):
        return "\n".join(kept) + "\n" if shortened else text
    errors = [line for line in lines if _DIAGNOSTIC.search(line) and "error: " in line]
    if errors and not any(_DIAGNOSTIC.search(line) and "error: " in line for line in kept):
        kept.append(errors[0][:MAX_LINE_BYTES])
    kept.append("[clang's output cut here: %d more lines; %d errors in all]" % (len(lines) - len(kept), len(errors)))
    return "\n".join(kept) + "\n"


def compile_into_cache(toolchain, src, common, key_args, recipe_dir, recipe, suffix, out_path):
    """A compile the cache did not hold (Toolchain.compile): run clang with
    ``-MD``, record the headers it read with their sha256, and store the object
    and its manifest, object first; return CompileResult."""
    makedirs_private(recipe_dir)
    # Temp files of a compile killed mid-way (old enough not to be another run's).
    remove_temp_files(recipe_dir, min_age=_STALE_TMP_SECONDS)
    fd, obj_tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=recipe_dir)
    os.close(fd)
    dep_tmp = obj_tmp[:-len(suffix)] + ".d"
    argv = [toolchain.clang.path] + common + ["-MD", "-MF", dep_tmp, "-c", src, "-o", obj_tmp]
    shown = [toolchain.clang.path] + key_args + ["-o", out_path or "<cache>"]
    try:
        toolchain.clang_runs += 1
        try:
            # cwd = the source's directory: it is recorded in the debug info,
            # and fixing it makes the object a function of the cache key.
            rc, _out, err = toolchain.run(bounded(argv, toolchain.timeout), cwd=os.path.dirname(src))
        except OSError as exc:
            raise ToolchainError("cannot run clang %s: %s; install clang (%s)"
                                 % (toolchain.clang.path, exc, INSTALL_HINT))
        if rc in _TIMED_OUT:
            raise CompileError("%s: clang did not finish within %d s; the source may expand to "
                               "something huge (macros, unrolled loops)" % (src, toolchain.timeout), shown)
        stderr = bound_output(err.decode("utf-8", "replace"))
        if rc != 0:
            raise CompileError(stderr or "clang exited with status %d and no message" % rc, shown)
        try:
            with open(dep_tmp, "r") as handle:
                deps = parse_depfile(handle.read())
        except (IOError, OSError) as exc:
            raise ToolchainError("clang wrote no dependency file %s: %s" % (dep_tmp, exc))
        headers = {}
        for dep in deps:
            path = os.path.normpath(os.path.join(os.path.dirname(src), dep))
            if path == src:
                continue
            try:
                headers[path] = sha256_file(path)
            except (IOError, OSError):
                headers[path] = None  # gone already; a lookup requires it still gone
        key = toolchain._key(recipe, headers)
        obj = os.path.join(recipe_dir, key + suffix)
        with open(obj_tmp, "rb") as handle:
            os.fsync(handle.fileno())
        digest = sha256_file(obj_tmp)
        os.chmod(obj_tmp, 0o600)
        os.replace(obj_tmp, obj)  # object first: a manifest always names a whole object
        manifest = {"sha256": digest, "headers": sorted(headers.items()), "warnings": stderr,
                    "clang": toolchain.clang.banner, "argv": key_args, "created": int(time.time())}
        atomic_write(os.path.join(recipe_dir, key + ".json"),
                     json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"), crash_at=_NO_CRASH_POINT)
    finally:
        _unlink_quiet(obj_tmp)
        _unlink_quiet(dep_tmp)
    final = deliver(obj, out_path)
    return CompileResult(final, digest, False, [toolchain.clang.path] + key_args + ["-o", final], stderr)
