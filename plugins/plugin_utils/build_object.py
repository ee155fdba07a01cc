# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compile a plugin source with the collection's toolchain, outside a module:
the entry point for builds on the Ansible controller (roles/bytecount runs it
with delegate_to: localhost), so the controller uses exactly the flags, the
clang choice and the include directories a target's build uses.

    python -m ansible_collections.ebpf.datapath.plugins.plugin_utils.build_object \\
        --src bytecount.c --out build/bytecount.o --cache-dir build/cache [--cflag=-ffile-prefix-map=...]

Prints one JSON object: {"object": path, "sha256": hex, "cached": bool,
"argv": [...]}; exits 1 with {"failed": true, "msg": ...} when the source is
refused or no clang is usable.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import sys

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess


def build(src, out, cache_dir, cflags=(), include_dirs=(), clang=None):
    """Compile src to out with toolchain.Toolchain; returns the JSON-able result."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import CompileError, Toolchain
    try:
        toolchain = Toolchain(cache_dir, run_subprocess, clang=clang)
        result = toolchain.compile(src, cflags=list(cflags), include_dirs=list(include_dirs), out_path=out)
    except CompileError as exc:
        raise DatapathError("clang could not compile %s:\n%s" % (src, exc.diagnostics), log=exc.diagnostics)
    return {"object": result.object_path, "sha256": result.sha256, "cached": result.cached,
            "argv": list(result.argv)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--src", required=True, help="the plugin's BPF C source")
    parser.add_argument("--out", required=True, help="where the object goes")
    parser.add_argument("--cache-dir", required=True, help="the compile cache (content-addressed)")
    parser.add_argument("--cflag", action="append", default=[], help="an extra clang flag (allow-listed)")
    parser.add_argument("--include-dir", action="append", default=[], help="an extra include directory")
    parser.add_argument("--clang", help="the clang to use (default: the newest usable one)")
    args = parser.parse_args(argv)
    try:
        out = build(args.src, args.out, args.cache_dir, args.cflag, args.include_dir, args.clang)
    except DatapathError as exc:
        _emit({"failed": True, "msg": str(exc)})
        return 1
    _emit(out)
    return 0


def _emit(result):
    # Run by the controller's Python, not a module: the answer is one JSON line.
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
