# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find clang and compile BPF C with it, behind a content-addressed cache.

Every compile runs clang with an argv list (never a shell)::

    clang -target bpf -g -O2 -mcpu=v3 -fno-crash-diagnostics -I<arch include dir> -I<include_dirs...>
          -I<cache_dir>/include/<sha> -D<k>=<v>... <cflags, allow-listed> -c <src> -o <out>

``-mcpu=v3``: the BPF ISA v3 adds 32-bit jumps and ALU32 subregisters. Every
kernel >= 5.1 accepts it (Debian 12's 6.1, current kernels), the code is smaller
and the verifier tracks 32-bit bounds better. clang before 20 defaults to v1, so
we say it explicitly to get the same code from every clang we accept. A later
``-mcpu=`` in ``cflags`` wins (clang takes the last one) for older kernels.

The arch include dir (``/usr/include/x86_64-linux-gnu`` on Debian/amd64) is
needed because ``-target bpf`` drops the host's multiarch search path, and
``<linux/types.h>`` includes ``<asm/types.h>`` which lives there.

Cache (``cache_dir``)::

    objects/<recipe>/<key>.o      the object (``<key>.bc``: LLVM bitcode, compile(bitcode=True))
    objects/<recipe>/<key>.json   manifest: headers with their sha256, object sha256, warnings
    src/<sha256 of text>/<name>   sources written by compile_source_text()
    joined/<key>.o, <key>.json    objects of bitcode modules joined into one (join_bitcode)
    clang-probe.json              each clang binary probed (by path, mtime, size): its version, or why
                                  it was refused (RefusedClang), so a run starts no clang to learn it

``recipe`` = sha256(clang's --version banner, argv without the compiler path
and output, source bytes). ``key`` = sha256(recipe, every header the source
included with its sha256) -- the header list comes from clang's own dependency
output (``-MD -MF``) on the compile that filled the entry. A lookup re-hashes
the headers a manifest lists; any change is a miss. Objects and manifests are
written to a temp file and renamed, object first, so a manifest that exists
always names a complete object, even with several processes compiling at once.

Bitcode (``clang -emit-llvm``) is cached the same way; its recipe differs by
that flag. ``join_bitcode`` (bitcode_join.py) makes one BPF object of several bitcode modules
with LLVM's own tools from clang's directory (llvm-link, llvm-nm, opt, llc);
its entry is keyed by the sha256 of its inputs, so a rerun starts no tool.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.files import atomic_write, makedirs_private, sha256_file
from ansible_collections.ebpf.datapath.plugins.module_utils.naming import InvalidName, check_name
from ansible_collections.ebpf.datapath.plugins.module_utils.shipped_headers import SHIPPED_HEADERS

# Newest first. A plain "clang" is ranked by the version it reports.
CLANG_CANDIDATES = ("clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14", "clang")
MIN_CLANG_MAJOR = 14
INSTALL_HINT = "apt-get install clang-19"

# -fno-crash-diagnostics: a crashing clang would otherwise write the
# preprocessed source and a script to $TMPDIR, outside the roots.
BASE_CFLAGS = ("-target", "bpf", "-g", "-O2", "-mcpu=v3", "-fno-crash-diagnostics")
# The cache's writes are no crash point of a chain change (faults.POINTS).
_NO_CRASH_POINT = "compile_cache"
# Where generated C is said to live in the objects made from it (compile_source_text).
GENERATED_SOURCE_DIR = "/ebpf-datapath/src"
COMPILE_TIMEOUT = 120.0
PROBE_TIMEOUT = 30.0

# The collection's own plugin headers in the collection tree (absent in an
# AnsiballZ zip): the source of SHIPPED_HEADERS below, which compiles use.
COLLECTION_INCLUDE = os.path.realpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bpf", "include"))

# Headers every compile can include wherever the modules run (an AnsiballZ zip
# carries no bpf/include): shipped in shipped_headers.py (generated from
# bpf/include by scripts/ship-headers.py; a unit test keeps them equal), written
# on first use to <cache_dir>/include/<sha256 of them all>/, which comes first
# after the caller's include dirs (SHIPPED_HEADERS, imported above).

_MACHINE_TRIPLETS = {
    "x86_64": "x86_64-linux-gnu",
    "amd64": "x86_64-linux-gnu",
    "aarch64": "aarch64-linux-gnu",
    "arm64": "aarch64-linux-gnu",
    "armv7l": "arm-linux-gnueabihf",
    "armv6l": "arm-linux-gnueabihf",
    "i386": "i386-linux-gnu",
    "i686": "i386-linux-gnu",
    "ppc64le": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu",
    "riscv64": "riscv64-linux-gnu",
    "mips64": "mips64el-linux-gnuabi64",
    "loongarch64": "loongarch64-linux-gnu",
}

_VERSION_RE = re.compile(r"clang version (\d+)\.(\d+)(?:\.(\d+))?")
_DEFINE_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
_STALE_TMP_SECONDS = 3600

ClangInfo = collections.namedtuple("ClangInfo", ["path", "version", "major", "banner"])
ClangInfo.__doc__ = """A usable clang: path, version ("19.1.7"), major (19) and the
first line of ``--version`` (part of every cache key)."""

CompileResult = collections.namedtuple(
    "CompileResult", ["object_path", "sha256", "cached", "argv", "warnings"])
CompileResult.__new__.__defaults__ = ("",)
CompileResult.__doc__ = """object_path, its sha256, whether it came from the cache,
the argv that builds it (with ``-o object_path``) and clang's warnings."""


class ToolchainError(DatapathError):
    """No usable compiler, a flag that is not allowed, or a compile that could not
    be run; the message says what to do."""


class RefusedClang(ToolchainError):
    """A binary that is no usable clang by what its ``--version`` says (not
    clang, too old): remembered with the probes, as a usable clang is, so that
    a later run does not start it again (toolchain._remember_probe)."""


class CompileError(ToolchainError):
    """clang refused the source. ``diagnostics`` is clang's stderr
    (``file.c:LINE:COL: error: ...``) bounded by bound_output(), also the
    ``log``; ``argv`` the command that was run."""

    def __init__(self, diagnostics, argv):
        from ansible_collections.ebpf.datapath.plugins.module_utils.clang_run import bound_output
        diagnostics = bound_output(diagnostics)
        super(CompileError, self).__init__(diagnostics, log=diagnostics)
        self.diagnostics = diagnostics
        self.argv = list(argv)

    def __str__(self):
        return self.diagnostics


# ---------------------------------------------------------------------------
# finding clang

_probe_cache = {}

# Probe results that outlive the process: a module run is one process, and
# probing clang starts it twice (--version, -print-targets), which costs more
# than the rest of a no-op run. Set by Toolchain to a file in its cache dir;
# keyed by the binary's path, mtime and size, so an upgraded clang is probed again.
_probe_file = [None]
# How a refused binary (RefusedClang) is remembered: [_REFUSED, message].
_REFUSED = "refused"


def _load_probe_file():
    path = _probe_file[0]
    if not path:
        return {}
    try:
        with open(path) as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember_probe(key, info):
    path = _probe_file[0]
    if not path:
        return
    data = _load_probe_file()
    data["|".join(str(k) for k in key)] = list(info)
    try:
        makedirs_private(os.path.dirname(path))
        atomic_write(path, json.dumps(data, sort_keys=True).encode("utf-8"), crash_at=_NO_CRASH_POINT)
    except OSError:
        pass  # a cache we cannot write is only slower


def probe_clang(run, path):
    """Return ClangInfo for the clang at ``path`` (a path or a name on PATH), or
    raise ToolchainError saying why it cannot build BPF objects. ``run``: the
    command runner (see clang_run.run_probe)."""
    resolved = path if os.sep in path else shutil.which(path)
    if not resolved or not os.path.isfile(resolved) or not os.access(resolved, os.X_OK):
        raise ToolchainError("clang '%s' was not found or is not executable; install clang (%s) "
                             "or name a working clang" % (path, INSTALL_HINT))
    resolved = os.path.abspath(resolved)
    try:
        st = os.stat(resolved)
        cache_key = (resolved, st.st_mtime_ns, st.st_size)
    except OSError:
        cache_key = (resolved,)
    cached = _probe_cache.get(cache_key)
    if cached is not None:
        if isinstance(cached, ToolchainError):
            raise cached
        return cached
    remembered = _load_probe_file().get("|".join(str(k) for k in cache_key)) if len(cache_key) == 3 else None
    if remembered and len(remembered) == 4 and remembered[0] == resolved:
        info = ClangInfo(*remembered)
        _probe_cache[cache_key] = info
        return info
    if remembered and len(remembered) == 2 and remembered[0] == _REFUSED:
        _probe_cache[cache_key] = RefusedClang(remembered[1])
        raise _probe_cache[cache_key]
    from ansible_collections.ebpf.datapath.plugins.module_utils import clang_run
    try:
        info = clang_run.probe_uncached(run, resolved)
    except ToolchainError as exc:
        _probe_cache[cache_key] = exc
        if isinstance(exc, RefusedClang) and len(cache_key) == 3:
            # Not a failure to run it, which may pass next time.
            _remember_probe(cache_key, [_REFUSED, str(exc)])
        raise
    _probe_cache[cache_key] = info
    if len(cache_key) == 3:
        _remember_probe(cache_key, info)
    return info


def find_clang(run, preferred=None):
    """The newest usable clang: ``preferred`` (a path or name) when it works,
    else the newest of clang-19 ... clang-14 and clang on PATH.

    Raises ToolchainError naming what to install when none is usable.
    """
    problems = []
    if preferred:
        try:
            return probe_clang(run, preferred)
        except ToolchainError as exc:
            problems.append(str(exc))
    found = []
    seen = set()
    for name in CLANG_CANDIDATES:
        path = shutil.which(name)
        if not path:
            continue
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        try:
            info = probe_clang(run, path)
        except ToolchainError as exc:
            problems.append(str(exc))
            continue
        found.append(info)
    if found:
        # Newest first; the candidate order breaks ties (versioned names first).
        found.sort(key=lambda i: tuple(int(p) for p in i.version.split(".")), reverse=True)
        return found[0]
    raise ToolchainError(
        "no usable clang found (looked for %s on PATH=%s)%s; install one: %s"
        % (", ".join(CLANG_CANDIDATES), os.environ.get("PATH", ""),
           (": " + "; ".join(problems)) if problems else "", INSTALL_HINT))


_arch_include_cache = []


def arch_include_dir(run):
    """The multiarch include dir holding <asm/...> (``/usr/include/<triplet>``),
    or None where the distribution keeps asm/ directly in /usr/include."""
    if _arch_include_cache:
        return _arch_include_cache[0]
    # Debian's Python knows the triplet: no gcc start needed (sysconfig, which
    # reads it from its build data, only when the interpreter does not say).
    triplet = getattr(sys.implementation, "_multiarch", None)
    if not triplet:
        import sysconfig
        triplet = sysconfig.get_config_var("MULTIARCH") or None
    for argv in ([] if triplet else (["gcc", "-print-multiarch"], ["dpkg-architecture", "-qDEB_HOST_MULTIARCH"])):
        if not shutil.which(argv[0]):
            continue
        from ansible_collections.ebpf.datapath.plugins.module_utils.clang_run import run_probe
        proc, _err = run_probe(run, argv)
        if proc is not None and proc.returncode == 0 and proc.stdout.strip():
            triplet = proc.stdout.strip().splitlines()[0].strip()
            break
    if not triplet:
        triplet = _MACHINE_TRIPLETS.get(platform.machine().lower())
    result = None
    if triplet and os.path.isdir(os.path.join("/usr/include", triplet)):
        result = os.path.join("/usr/include", triplet)
    _arch_include_cache.append(result)
    return result


# ---------------------------------------------------------------------------
# helpers

def _sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def shipped_include_dir(cache_dir):
    """The directory holding SHIPPED_HEADERS under cache_dir, written when missing
    or damaged; its name is the sha256 of the headers, so a changed header is a
    new directory (and a new cache key)."""
    material = json.dumps(sorted(SHIPPED_HEADERS.items()), separators=(",", ":")).encode("utf-8")
    path = os.path.join(cache_dir, "include", _sha256_bytes(material))
    for name, text in sorted(SHIPPED_HEADERS.items()):
        target = os.path.join(path, name)
        data = text.encode("utf-8")
        try:
            with open(target, "rb") as handle:
                if handle.read() == data:
                    continue
        except (IOError, OSError):
            pass
        makedirs_private(os.path.dirname(target))
        atomic_write(target, data, crash_at=_NO_CRASH_POINT)
    return path


def _unlink_quiet(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _define_args(defines):
    args = []
    for key in sorted(defines or {}):
        if not isinstance(key, str) or not _DEFINE_RE.match(key):
            raise ToolchainError("define %r is not a C identifier" % (key,))
        value = defines[key]
        args.append("-D%s" % key if value is None else "-D%s=%s" % (key, value))
    return args


# ---------------------------------------------------------------------------
# the toolchain

def deliver(obj, out_path):
    """obj itself, or a copy of it at out_path (0644, atomic) when one is asked for."""
    if not out_path:
        return obj
    out_path = os.path.abspath(out_path)
    directory = os.path.dirname(out_path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(obj)[1], dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    return out_path


class Toolchain:
    """clang plus a compile cache under ``cache_dir``.

    ``run``: the command runner (module_common.module_runner in a module,
    plugin_utils.runner.run_subprocess elsewhere). ``clang``: a path or name to
    use exactly (ToolchainError when it does not work); None picks the newest
    usable clang (find_clang()).
    ``clang_runs`` counts the compiles this instance handed to clang,
    ``llvm_runs`` the LLVM tools join_bitcode() started.
    """

    def __init__(self, cache_dir, run, clang=None, timeout=COMPILE_TIMEOUT):
        self.cache_dir = os.path.abspath(cache_dir)
        self.run = run
        _probe_file[0] = os.path.join(self.cache_dir, "clang-probe.json")
        self.clang = probe_clang(run, clang) if clang else find_clang(run)
        self.timeout = timeout
        self.clang_runs = 0
        self.llvm_runs = 0

    # -- argv --------------------------------------------------------------

    def _common_args(self, cflags, include_dirs, defines, prefix_map=None):
        args = list(BASE_CFLAGS)
        if prefix_map:
            # Ours, never a user's (check_cflags refuses it): recorded paths
            # that do not depend on where this host keeps its cache.
            args.append("-ffile-prefix-map=%s=%s" % prefix_map)
        arch = arch_include_dir(self.run)
        if arch:
            args.append("-I" + arch)
        for inc in include_dirs:
            args.append("-I" + os.path.abspath(inc))
        args.append("-I" + shipped_include_dir(self.cache_dir))
        args.extend(_define_args(defines))
        if cflags:  # the allow-list is imported by the runs that have flags to check
            from ansible_collections.ebpf.datapath.plugins.module_utils.cflags import check_cflags
            args.extend(check_cflags(cflags))
        return args

    # -- cache -------------------------------------------------------------

    def _recipe(self, key_args, source):
        material = json.dumps([self.clang.banner, key_args], separators=(",", ":")).encode("utf-8")
        return _sha256_bytes(material + b"\0" + source)

    @staticmethod
    def _key(recipe, header_hashes):
        material = json.dumps([recipe, sorted(header_hashes.items())], separators=(",", ":"))
        return _sha256_bytes(material.encode("utf-8"))

    def _lookup(self, recipe_dir, recipe, suffix=".o"):
        """(object path, manifest) of an entry whose headers are unchanged, or None."""
        try:
            names = [n for n in os.listdir(recipe_dir) if n.endswith(".json") and not n.startswith(".")]
        except OSError:
            return None
        manifests = []
        for name in names:
            path = os.path.join(recipe_dir, name)
            try:
                manifests.append((os.stat(path).st_mtime, path))
            except OSError:
                continue
        hashes = {}
        for _mtime, path in sorted(manifests, reverse=True):  # newest entry first
            try:
                with open(path, "rb") as handle:
                    manifest = json.loads(handle.read().decode("utf-8"))
                headers = dict(manifest["headers"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            current = {}
            for header in headers:
                if header not in hashes:
                    try:
                        hashes[header] = sha256_file(header)
                    except OSError:
                        hashes[header] = None
                current[header] = hashes[header]
            if current != headers:
                continue
            key = self._key(recipe, headers)
            if os.path.basename(path) != key + ".json":
                continue
            obj = os.path.join(recipe_dir, key + suffix)
            try:
                if sha256_file(obj) != manifest.get("sha256"):
                    continue  # damaged entry: rebuild it
            except OSError:
                continue
            return obj, manifest
        return None

    # -- compile -----------------------------------------------------------

    def compile(self, src_path, cflags=(), include_dirs=(), defines=None, out_path=None, prefix_map=None,
                bitcode=False, unoptimized=False):
        """Compile one BPF C file; return CompileResult.

        With ``out_path`` the object is copied there (atomically); without,
        ``object_path`` is the cache entry itself, which callers must not modify.
        ``bitcode``: LLVM bitcode (``-emit-llvm``, a ``.bc`` file) instead of an
        object, with the same flags otherwise; join_bitcode() takes it.
        ``unoptimized`` (with bitcode): the bitcode as clang's front end makes
        it for those flags, before any LLVM pass (``-Xclang
        -disable-llvm-passes``, ours, never a user's), so that join_bitcode's
        one -O2 pipeline is the first to optimise it, with the code it inlines.
        Raises CompileError with clang's diagnostics when the source is refused.
        """
        src = os.path.abspath(src_path)
        try:
            with open(src, "rb") as handle:
                source = handle.read()
        except (IOError, OSError) as exc:
            raise ToolchainError("cannot read BPF source %s: %s" % (src, exc.strerror or exc))
        common = self._common_args(cflags, include_dirs, defines, prefix_map)
        if bitcode:
            common.append("-emit-llvm")
            if unoptimized:
                common += ["-Xclang", "-disable-llvm-passes"]
        suffix = ".bc" if bitcode else ".o"
        key_args = common + ["-c", src]
        recipe = self._recipe(key_args, source)
        recipe_dir = os.path.join(self.cache_dir, "objects", recipe)

        hit = self._lookup(recipe_dir, recipe, suffix)
        if hit is not None:
            obj, manifest = hit
            final = deliver(obj, out_path)
            return CompileResult(final, manifest["sha256"], True,
                                 [self.clang.path] + key_args + ["-o", final], manifest.get("warnings", ""))

        from ansible_collections.ebpf.datapath.plugins.module_utils import clang_run
        return clang_run.compile_into_cache(self, src, common, key_args, recipe_dir, recipe, suffix, out_path)

    def compile_source_text(self, text, name, cflags=(), include_dirs=(), defines=None, out_path=None,
                            bitcode=False, unoptimized=False):
        """Compile generated C: written to ``<cache_dir>/src/<sha256>/<name>``
        (``.c`` added when missing) so diagnostics name it and an unchanged text
        is an unchanged path, hence a cache hit. The path is recorded in the
        object as ``/ebpf-datapath/src/<sha256>/<name>``, so the object of a
        text is the same on every host (the controller's and a target's)."""
        try:
            check_name(name, "path component")
        except InvalidName as exc:
            raise ToolchainError("source name: %s" % exc)
        if not name.endswith(".c"):
            name += ".c"
        data = text.encode("utf-8") if not isinstance(text, bytes) else text
        directory = os.path.join(self.cache_dir, "src", _sha256_bytes(data))
        path = os.path.join(directory, name)
        makedirs_private(directory)
        try:
            with open(path, "rb") as handle:
                current = handle.read()
        except (IOError, OSError):
            current = None
        if current != data:
            atomic_write(path, data, crash_at=_NO_CRASH_POINT)
        return self.compile(path, cflags=cflags, include_dirs=include_dirs, defines=defines, out_path=out_path,
                            prefix_map=(os.path.join(self.cache_dir, "src"), GENERATED_SOURCE_DIR), bitcode=bitcode,
                            unoptimized=unoptimized)

    # -- LLVM tools and joined bitcode ---------------------------------------------

    def llvm_tool(self, name):
        """The path of an LLVM tool (llvm-link, opt, ...) of clang's own LLVM:
        beside clang's real path (Debian: /usr/lib/llvm-19/bin/), else
        ``<name>-<major>`` on PATH. A tool of another LLVM may not read the
        bitcode this clang writes, so an unversioned one on PATH is never taken."""
        beside = os.path.join(os.path.dirname(os.path.realpath(self.clang.path)), name)
        if os.path.isfile(beside) and os.access(beside, os.X_OK):
            return beside
        versioned = shutil.which("%s-%d" % (name, self.clang.major))
        if versioned:
            return versioned
        raise ToolchainError("%s of LLVM %d was found neither beside clang (%s) nor on PATH as %s-%d; install "
                             "LLVM's tools for this clang (apt-get install llvm-%d)"
                             % (name, self.clang.major, os.path.dirname(os.path.realpath(self.clang.path)),
                                name, self.clang.major, self.clang.major))

    def join_bitcode(self, parts, inline=(), cpu="v3", out_path=None):
        """One BPF object made of several bitcode modules (bitcode_join.join);
        return CompileResult."""
        from ansible_collections.ebpf.datapath.plugins.module_utils import bitcode_join
        return bitcode_join.join(self, parts, inline=inline, cpu=cpu, out_path=out_path)
