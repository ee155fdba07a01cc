# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cflags: an allow-list (docs/security.md).

Only flags that shape preprocessing and code generation pass. Everything
else is refused before clang runs, naming the flag: flags that load code into
clang (-fplugin, -Xclang -load), that pass arguments past this check
(@response files, -Xclang, -mllvm, -Wp,), that write files (-MJ, -save-temps,
-ftime-trace, -fprofile-*), and any flag not on the list. toolchain.py asks
here before it starts clang with a user's flags."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import ToolchainError

# Flags whose value may be the next argument (clang: JoinedOrSeparate).
_SEPARATE_VALUE = ("-D", "-U", "-I", "-isystem", "-iquote", "-idirafter", "-include", "-imacros")
_ALLOWED_PATTERNS = [re.compile(p) for p in (
    r"-D[A-Za-z_][A-Za-z0-9_]*(=.*)?",
    r"-U[A-Za-z_][A-Za-z0-9_]*",
    r"-(I|isystem|iquote|idirafter|include|imacros).+",
    r"-O([0-3sz]|g|fast)?",
    r"-W(no-)?[A-Za-z0-9][A-Za-z0-9_=+.-]*",  # no comma: -Wl, -Wa, -Wp, pass arguments on
    r"-w|-pedantic|-pedantic-errors|-nostdinc|-nostdlibinc|-ffreestanding",
    r"-g|-g[0-3]|-ggdb[0-3]?|-gdwarf(-[2-5])?|-gbtf|-g(no-)?column-info|-gline-tables-only|-gfull|"
    r"-g(no-)?strict-dwarf|-g(no-)?inline-line-tables|-gno-embed-source|-gembed-source",
    r"-std=[A-Za-z0-9:+]+",
    r"-mcpu=[A-Za-z0-9]+|-mlittle-endian|-mbig-endian",
    r"-fdebug-prefix-map=.+|-fmacro-prefix-map=.+|-ffile-prefix-map=.+",
    r"-f(no-)?(%s)" % "|".join((
        "builtin", "builtin-[A-Za-z0-9_]+", "common", "strict-aliasing", "wrapv", "delete-null-pointer-checks",
        "signed-char", "unsigned-char", "short-enums", "inline", "inline-functions", "unroll-loops",
        "vectorize", "slp-vectorize", "optimize-sibling-calls", "jump-tables", "unwind-tables",
        "asynchronous-unwind-tables", "stack-protector", "stack-protector-strong", "stack-protector-all",
        "zero-initialized-in-bss", "ident", "discard-value-names", "merge-all-constants", "strict-overflow",
        "color-diagnostics", "diagnostics-color", "caret-diagnostics", "show-column", "show-source-location",
        "diagnostics-show-option", "elide-type", "ms-extensions", "gnu89-inline", "gnu-keywords",
        "dollars-in-identifiers", "data-sections", "function-sections", "trapping-math", "finite-math-only",
        "fast-math", "trivial-auto-var-init-stop-after=[0-9]+", "trivial-auto-var-init=(zero|pattern|uninitialized)",
        "visibility=(default|hidden|protected|internal)", "macro-backtrace-limit=[0-9]+",
        "template-backtrace-limit=[0-9]+", "message-length=[0-9]+", "diagnostics-color=(always|never|auto)",
        "bracket-depth=[0-9]+", "constexpr-depth=[0-9]+", "max-type-align=[0-9]+", "pack-struct(=[0-9]+)?",
    )),
)]
# Refused with a reason more precise than "not on the allow-list": (names
# matched exactly, prefixes, reason).
_REFUSED = (
    ((), ("@",), "is a response file: clang would read more arguments from it, past this check"),
    (("-B", "-load", "-plugin"),
     ("-fplugin", "-fpass-plugin", "--config", "-B", "--gcc-", "-ccc-", "-fuse-ld", "-resource-dir", "--driver-mode",
      "-no-integrated-as", "-fno-integrated-as", "--plugin", "-load="),
     "loads code into clang or makes it run another program"),
    ((), ("-Xclang", "-mllvm", "-Xlinker", "-Xassembler", "-Xpreprocessor", "-Xanalyzer", "-Xopenmp", "-Xarch",
          "-Xcuda", "-Xoffload", "-Wl,", "-Wa,", "-Wp,"),
     "passes arguments to clang's internals or to other tools, past this check"),
    (("-o",),
     ("-M", "-o", "--output", "-save-temps", "-ftime-trace", "-fprofile", "-fcs-profile", "--serialize-diagnostics",
      "-fcrash-diagnostics", "-fmodules", "-fmodule", "-fprebuilt-module", "-fimplicit-module",
      "-fsave-optimization-record", "-foptimization-record", "-fproc-stat-report", "-gsplit-dwarf", "-fdump",
      "-dumpdir", "-dumpbase", "-ftest-coverage", "-fcoverage", "-fstack-usage", "-fxray", "-fsanitize",
      "-fdiagnostics-format", "-ftime-report", "--analyze", "-emit-", "-fembed-bitcode"),
     "writes a file (or changes what is written) where the toolchain does not look"),
    (("-c", "-E", "-S", "-x", "-###", "--", "-v", "-H", "-P", "-C", "-dD", "-dM", "-dI", "-fsyntax-only"),
     ("-target", "--target", "-x", "-print", "--print"),
     "is set by the toolchain (target, language, output, dependency files)"),
)
_ALLOWED_HELP = ("-D, -U, -I, -isystem, -iquote, -idirafter, -include, -imacros, -O<level>, -W<warning>, -w, "
                 "-g<debug info>, -std=, -mcpu=, -mlittle-endian, -mbig-endian, -nostdinc and -f flags that "
                 "neither load nor write (docs/security.md lists them)")


def _refusal(flag):
    """Why flag is refused, or None when the allow-list admits it."""
    if any(p.fullmatch(flag) for p in _ALLOWED_PATTERNS):
        return None
    for exact, prefixes, reason in _REFUSED:
        if flag in exact or flag.startswith(prefixes):
            return reason
    return "is not on the allow-list of compiler flags; allowed are " + _ALLOWED_HELP


def check_cflags(cflags):
    """cflags as clang will get them, or ToolchainError naming the first flag that
    is not allowed and why. A value given as the next argument (-I dir,
    -include file) is taken as a value, never as a flag; it must not start with
    '@' (clang expands response files before it parses anything)."""
    if isinstance(cflags, (str, bytes)):
        raise ToolchainError("cflags must be a list of arguments, not the string %r" % (cflags,))
    out = []
    args = list(cflags)
    index = 0
    while index < len(args):
        flag = args[index]
        if not isinstance(flag, str) or "\0" in flag:
            raise ToolchainError("cflag %r is not a string" % (flag,))
        if flag in _SEPARATE_VALUE:
            if index + 1 >= len(args):
                raise ToolchainError("cflag %r needs a value after it" % flag)
            value = args[index + 1]
            if not isinstance(value, str) or "\0" in value or not value or value.startswith("@"):
                raise ToolchainError("the value %r of cflag %r is not allowed: empty, NUL, or a response file "
                                     "(@file), which clang would read more arguments from" % (value, flag))
            out.extend([flag, value])
            index += 2
            continue
        if not flag.startswith("-") or flag.startswith("@"):
            reason = (_REFUSED[0][2] if flag.startswith("@") else
                      "is not a flag: clang would take it as one more input file")
            raise ToolchainError("cflag %r is not allowed: it %s" % (flag, reason))
        reason = _refusal(flag)
        if reason:
            raise ToolchainError("cflag %r is not allowed: it %s" % (flag, reason))
        out.append(flag)
        index += 1
    return out
