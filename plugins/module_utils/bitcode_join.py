# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One BPF object of several bitcode modules (Toolchain.join_bitcode), made
with LLVM's own tools from clang's directory (llvm-link, llvm-nm, opt, llc)
and cached under ``joined/`` in the compile cache by the sha256 of its inputs,
so a rerun starts no tool. Only an inline build joins: other runs do not
import this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import tempfile
import time

from ansible_collections.ebpf.datapath.plugins.module_utils.files import atomic_write, makedirs_private, sha256_file
from ansible_collections.ebpf.datapath.plugins.module_utils.clang_run import _TIMED_OUT, bound_output, bounded
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import (
    _DEFINE_RE, _NO_CRASH_POINT, CompileError, CompileResult, ToolchainError, _sha256_bytes,
    _STALE_TMP_SECONDS, _unlink_quiet, deliver)

# The LLVM tools join_bitcode runs, found beside clang (Toolchain.llvm_tool).
JOIN_TOOLS = ("llvm-link", "llvm-nm", "opt", "llc")
# What opt runs on a joined module (join_bitcode): forceattrs applies the
# -force-(remove-)attribute options (the functions to inline lose noinline and
# get alwaysinline), internalize makes exactly those functions internal (every
# other defined symbol is listed as public), and the O2 pipeline inlines them,
# optimises each caller with the code it now holds and deletes the bodies that
# nothing calls any more.
JOIN_PASSES = "forceattrs,internalize,default<O2>"
# Part of every join's cache key: change it when the join's steps change.
JOIN_VERSION = 1


def join(toolchain, parts, inline=(), cpu="v3", out_path=None):
    """One BPF object made of several bitcode modules, with toolchain's clang
    (a toolchain.Toolchain); return CompileResult.

    parts: [(bitcode path, its sha256)], in link order (the first module's
    globals come first in each section). inline: function symbols that are
    inlined into every caller and disappear as functions of their own
    (JOIN_PASSES); every other symbol keeps its name and linkage. cpu: the
    BPF ISA llc generates (``-mcpu=``). Steps, with argv lists in a private
    temp dir: ``llvm-link`` -> ``llvm-nm`` (the defined symbols, all public
    but ``inline``) -> ``opt`` -> ``llc``. Cached under ``joined/`` by the
    sha256 of the inputs, the symbols, the cpu and clang's banner (the tools
    are of clang's LLVM), so a rerun starts no tool. A tool's refusal raises
    CompileError with its bounded output (an llc error such as the BPF stack
    limit names the function)."""
    if not re.match(r"\A[A-Za-z0-9]+\Z", cpu or ""):
        raise ToolchainError("BPF cpu %r is not a name llc knows (v1, v2, v3, v4, ...)" % (cpu,))
    inline = sorted(set(inline))
    for symbol in inline:
        if not _DEFINE_RE.match(symbol):
            raise ToolchainError("symbol %r to inline is not a C identifier" % (symbol,))
    parts = [(os.path.abspath(path), digest) for path, digest in parts]
    if not parts:
        raise ToolchainError("join_bitcode needs at least one bitcode module")
    material = json.dumps([JOIN_VERSION, toolchain.clang.banner, JOIN_PASSES, cpu, inline,
                           [digest for _path, digest in parts]], separators=(",", ":"))
    key = _sha256_bytes(material.encode("utf-8"))
    joined_dir = os.path.join(toolchain.cache_dir, "joined")
    obj = os.path.join(joined_dir, key + ".o")
    manifest_path = os.path.join(joined_dir, key + ".json")
    manifest = _read_manifest(manifest_path)
    try:
        if manifest is not None and sha256_file(obj) == manifest.get("sha256"):
            return CompileResult(deliver(obj, out_path), manifest["sha256"], True,
                                 list(manifest.get("argv", [])), manifest.get("warnings", ""))
    except OSError:
        pass  # no object (or a damaged entry): build it again
    tools = dict((name, toolchain.llvm_tool(name)) for name in JOIN_TOOLS)
    makedirs_private(joined_dir)
    _remove_stale_temp_dirs(joined_dir)
    work = tempfile.mkdtemp(prefix=".tmp-", dir=joined_dir)
    steps, warnings = [], []
    try:
        # Relative names inside the work dir: no temp path reaches the object.
        link = [tools["llvm-link"], "-o", "joined.bc"] + [path for path, _digest in parts]
        warnings.append(_run_tool(toolchain, link, work, steps)[1])
        nm = [tools["llvm-nm"], "--defined-only", "--extern-only", "joined.bc"]
        names, err = _run_tool(toolchain, nm, work, steps)
        defined = parse_nm_names(names)
        missing = [symbol for symbol in inline if symbol not in defined]
        if missing:
            raise ToolchainError("cannot inline %s: no bitcode module given defines %s"
                                 % (", ".join(missing), "it" if len(missing) == 1 else "them"))
        with open(os.path.join(work, "public.txt"), "w") as handle:
            handle.write("".join(name + "\n" for name in sorted(set(defined) - set(inline))))
        forced = []
        for symbol in inline:
            forced += ["-force-remove-attribute=%s:noinline" % symbol,
                       "-force-attribute=%s:alwaysinline" % symbol]
        opt = ([tools["opt"], "-internalize-public-api-file=public.txt"] + forced +
               ["-passes=" + JOIN_PASSES, "joined.bc", "-o", "optimized.bc"])
        warnings.append(_run_tool(toolchain, opt, work, steps)[1])
        llc = [tools["llc"], "-mcpu=" + cpu, "-O2", "-filetype=obj", "optimized.bc", "-o", "joined.o"]
        warnings.append(_run_tool(toolchain, llc, work, steps)[1])
        built = os.path.join(work, "joined.o")
        with open(built, "rb") as handle:
            os.fsync(handle.fileno())
        digest = sha256_file(built)
        os.chmod(built, 0o600)
        os.replace(built, obj)  # object first: a manifest always names a whole object
        text = bound_output("".join(w for w in warnings if w))
        manifest = {"sha256": digest, "inputs": [digest_ for _path, digest_ in parts], "inline": inline,
                    "cpu": cpu, "clang": toolchain.clang.banner, "argv": steps[-1], "steps": steps,
                    "warnings": text, "created": int(time.time())}
        atomic_write(manifest_path, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"),
                     crash_at=_NO_CRASH_POINT)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CompileResult(deliver(obj, out_path), digest, False, steps[-1], text)


def _run_tool(toolchain, argv, cwd, steps):
    """Run one LLVM tool of a join; (stdout, stderr) as text, or CompileError
    with what it said. argv is recorded in steps (with the tool's path)."""
    steps.append(list(argv))
    toolchain.llvm_runs += 1
    try:
        rc, out, err = toolchain.run(bounded(argv, toolchain.timeout), cwd=cwd)
    except OSError as exc:
        raise ToolchainError("cannot run %s: %s" % (argv[0], exc))
    name = os.path.basename(argv[0])
    if rc in _TIMED_OUT:
        raise CompileError("%s did not finish within %d s" % (name, toolchain.timeout), argv)
    err = err.decode("utf-8", "replace")
    if rc != 0:
        # An LLVM_ERROR ends in LLVM's crash boilerplate and a stack dump:
        # the message is what comes before.
        err = err.split(_LLVM_CRASH_BANNER, 1)[0].strip()
        raise CompileError("%s: %s" % (name, err or "exited with status %d and no message" % rc), argv)
    return out.decode("utf-8", "replace"), err


_LLVM_CRASH_BANNER = "PLEASE submit a bug report"


def parse_nm_names(text):
    """The symbol names in llvm-nm's default output (``<value> <type> <name>``
    per line; a bitcode symbol's value is dashes), in order, once each."""
    names = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and len(fields[-2]) == 1 and fields[-1] not in names:
            names.append(fields[-1])
    return names


def _read_manifest(path):
    try:
        with open(path, "rb") as handle:
            manifest = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and "sha256" in manifest else None


def _remove_stale_temp_dirs(directory):
    """Work dirs of joins killed mid-way (old enough not to be another run's)."""
    now = time.time()
    try:
        names = [n for n in os.listdir(directory) if n.startswith(".tmp-")]
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        try:
            if now - os.lstat(path).st_mtime < _STALE_TMP_SECONDS:
                continue
        except OSError:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            _unlink_quiet(path)
