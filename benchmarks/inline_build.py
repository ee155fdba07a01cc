# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `inline` build of a dispatcher, for the benchmarks: the plugins' sources and
the generated dispatcher become one LLVM module, so clang inlines the hook
functions into the dispatcher instead of calling them.

How (a sketch of what a `mode: inline` of the collection would do):

1. each plugin source is compiled to LLVM bitcode (``-emit-llvm``) with the same
   flags as its link-mode object, its global symbols renamed ``dpp_<plugin>__<name>``
   by ``-D`` exactly as plugin_store does (so two plugins may share names; their
   static helpers stay private to their own module), and with ``noinline`` turned
   into ``always_inline`` (hook functions are written ``noinline`` /
   ``DP_HOOK`` so link and freplace mode keep them separate functions);
2. the dispatcher C that link mode generates (extern hook functions) is compiled
   to bitcode too;
3. ``llvm-link`` joins the modules, and clang compiles the joined module to one
   BPF object: the always-inline hooks are inlined and optimised together with
   the dispatcher. The global hook functions stay in the object but nothing calls
   them, and libbpf loads only what the entry program reaches.

Unlike a single C file that #includes every plugin, nothing here collides when two
plugins define the same static helper or map name.
"""

import hashlib
import json
import os
import subprocess

from common import libbpf  # first: common sets up the collection's import path
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import toolchain as tc_mod
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess
from ansible_collections.ebpf.datapath.plugins.module_utils.naming import plugin_symbol

# noinline -> always_inline: both spellings clang accepts inside __attribute__.
INLINE_DEFINES = ("-Dnoinline=always_inline", "-D__noinline__=__always_inline__")


def llvm_tool(clang, name):
    """llvm-link (etc.) of the same LLVM as clang: next to its real path, else -<major>."""
    real = os.path.realpath(clang)
    beside = os.path.join(os.path.dirname(real), name)
    if os.access(beside, os.X_OK):
        return beside
    return name


def global_names(object_path):
    """Every global function and variable of a BPF object (license included),
    from its BTF: the names to rename per plugin in one joined module."""
    names = set()
    with libbpf.Btf.from_elf(object_path) as btf:
        for func in btf.functions():
            if func.linkage == "global":
                names.add(func.name)
        for var in btf.variables():
            if var.linkage == "global":
                names.add(var.name)
    return sorted(names)


class InlineBuilder:
    """Builds inline dispatchers into workdir, caching bitcode by its inputs."""

    def __init__(self, toolchain, workdir):
        self.toolchain = toolchain
        self.clang = toolchain.clang.path
        self.llvm_link = llvm_tool(self.clang, "llvm-link")
        self.workdir = workdir
        self.runs = 0  # clang / llvm-link invocations
        os.makedirs(workdir, exist_ok=True)

    def _run(self, argv, cwd=None):
        self.runs += 1
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=cwd, timeout=300, check=False)
        if proc.returncode != 0:
            raise RuntimeError("%s failed:\n%s" % (" ".join(argv), proc.stderr.decode("utf-8", "replace")))

    def _base_args(self, cflags=(), include_dirs=()):
        args = list(tc_mod.BASE_CFLAGS)
        arch = tc_mod.arch_include_dir(run_subprocess)
        if arch:
            args.append("-I" + arch)
        args += ["-I" + os.path.abspath(d) for d in include_dirs]
        if os.path.isdir(tc_mod.COLLECTION_INCLUDE):
            args.append("-I" + tc_mod.COLLECTION_INCLUDE)
        return args + list(cflags)

    def _bitcode(self, src, args, tag):
        with open(src, "rb") as handle:
            key = hashlib.sha256(json.dumps(args).encode() + b"\0" + handle.read()).hexdigest()[:24]
        out = os.path.join(self.workdir, "%s-%s.bc" % (tag, key))
        if not os.path.exists(out):
            self._run([self.clang] + args + ["-emit-llvm", "-c", src, "-o", out + ".tmp"], cwd=os.path.dirname(src))
            os.rename(out + ".tmp", out)
        return out

    def plugin_bitcode(self, plugin, record):
        """Bitcode of one source plugin (a registry record of plugin_store.build)."""
        src = record["source"]["src"]
        plain = self.toolchain.compile(src, cflags=record["cflags"], include_dirs=record["include_dirs"])
        defines = ["-D%s=%s" % (name, plugin_symbol(plugin, name)) for name in global_names(plain.object_path)]
        args = self._base_args(record["cflags"], record["include_dirs"]) + defines + list(INLINE_DEFINES)
        return self._bitcode(src, args, plugin)

    def build(self, name, kind, chain, plugins):
        """One BPF object: the dispatcher of chain ({'pre': [[plugin, fn]], 'post': [...]})
        with every hook function inlined. plugins: registry records by name."""
        pre = [plugin_symbol(p, f) for p, f in chain["pre"]]
        post = [plugin_symbol(p, f) for p, f in chain["post"]]
        source = disp_mod.generate_source(kind, pre, post, None, label="inline build (benchmark)")
        src = os.path.join(self.workdir, name + ".c")
        with open(src, "w") as handle:
            handle.write(source)
        parts = [self._bitcode(src, self._base_args(), name)]
        used = sorted(set(p for p, _f in chain["pre"] + chain["post"]))
        parts += [self.plugin_bitcode(p, plugins[p]) for p in used]
        joined = os.path.join(self.workdir, name + ".joined.bc")
        self._run([self.llvm_link, "-o", joined] + parts)
        out = os.path.join(self.workdir, name + ".o")
        self._run([self.clang] + list(tc_mod.BASE_CFLAGS) + ["-c", joined, "-o", out])
        return out
