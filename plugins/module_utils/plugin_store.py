# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A plugin's code on the host: build it, inspect it, store it (plugin_load.py
verifies it, pins its maps and prepares every load of its code).

For a source plugin two objects are made (see docs/architecture.md):
the *plain* object, exactly as written, whose maps are created and pinned under
``<bpffs_root>/plugins/<plugin>/maps/``; and the *namespaced* object, where every
global symbol is prefixed ``dpp_<plugin>__`` so that two plugins may use the same
names and still be linked into one dispatcher.

What an object holds is read by object_info.py and remembered by content
(describe_object). libbpf is imported by the functions that load into the
kernel only: a no-op rerun reads records and the cache, and starts faster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import stat

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.files import atomic_write, makedirs_private, sha256_file
from ansible_collections.ebpf.datapath.plugins.module_utils.naming import plugin_symbol
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Plugin
from ansible_collections.ebpf.datapath.plugins.module_utils.state import remove_bpffs_tree

# sha256 -> the file build() made or checked in this run. Nothing enters the
# object store before pin_maps() succeeds, so a refused plugin (or a check-mode
# run) leaves the store exactly as it was.
_STAGED = {}


class PluginError(DatapathError):
    """A plugin cannot be used as given; the message says what to fix."""


def check_input_file(path, what):
    """Refuse files an attacker could swap or edit: symlinks, non-regular files,
    group/world-writable files. Plugins run as kernel code, so this matters."""
    if "\0" in path:
        raise PluginError("%s path %r contains a NUL character; give the plain path of the file" % (what, path))
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise PluginError("%s %s cannot be read: %s" % (what, path, exc.strerror))
    if stat.S_ISLNK(st.st_mode):
        raise PluginError("%s %s is a symlink; give the real file" % (what, path))
    if not stat.S_ISREG(st.st_mode):
        raise PluginError("%s %s is not a regular file" % (what, path))
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PluginError("%s %s is writable by group or others (mode %o); chmod go-w it first"
                          % (what, path, stat.S_IMODE(st.st_mode)))


# What object_info.describe() returns: a remembered description lacking one is read again.
_DESCRIBED = frozenset(("functions", "maps", "globals", "entries", "prog_arrays"))


def describe_object(cache_dir, path, digest=None):
    """object_info.describe() of the object at path: remembered in the cache
    by its sha256, so a rerun with the same bytes neither opens the object nor
    imports libbpf (object_info does, on a miss). A plugin's object is read by
    libbpf as it is, so the record stays true for those bytes."""
    digest = digest or sha256_file(path)
    known = os.path.join(cache_dir, "object-info", digest + ".json")
    try:
        with open(known) as handle:
            info = json.load(handle)
        if isinstance(info, dict) and _DESCRIBED <= set(info):
            return info
    except (OSError, ValueError):
        pass  # not there, or not readable as written here: read the object again
    from ansible_collections.ebpf.datapath.plugins.module_utils import object_info
    try:
        info = object_info.describe(path)
    except object_info.ObjectError as exc:
        raise PluginError(str(exc), log=exc.log)
    makedirs_private(os.path.dirname(known))
    atomic_write(known, json.dumps(info, sort_keys=True).encode())
    return info


def build(toolchain, layout, name, src=None, obj=None, sha256=None, cflags=(), include_dirs=()):
    """Compile or take a plugin; return its registry record.

    Nothing on the host changes here (but the compile cache): the objects are
    stored and the maps pinned by pin_maps().
    """
    if src is not None:
        check_input_file(src, "plugin source")
        for inc in include_dirs:
            if not os.path.isdir(inc):
                raise PluginError("include directory %s does not exist" % inc)
        plain = _compile(toolchain, src, cflags, include_dirs, {})
        plain_sha = sha256_file(plain.object_path)
        info = describe_object(toolchain.cache_dir, plain.object_path, plain_sha)
        if not info["functions"]:
            raise PluginError("plugin source %s defines no global function to hook; hook functions "
                              "are global (not static) functions" % src)
        entries, prog_arrays = info["entries"], info["prog_arrays"]
        defines = dict((sym, plugin_symbol(name, sym)) for sym in info["globals"])
        namespaced, link_entries = _compile_namespaced(toolchain, name, src, cflags, include_dirs, defines,
                                                       entries, info)
        try:
            if namespaced is None:
                namespaced = _compile(toolchain, src, cflags, include_dirs, defines)
        except PluginError as exc:
            # The plain build worked, so a renamed global also names something
            # else (a struct field, a header's identifier).
            raise PluginError(
                "plugin source %s compiles, but not with its global symbols (%s) prefixed for linking; "
                "one of them is also used as another identifier. Rename it or make it static.\n%s"
                % (src, ", ".join(sorted(defines)), exc.log), log=exc.log)
        _stage(plain.object_path, plain_sha)
        link_sha = _stage(gpl_license_copy(toolchain, namespaced.object_path))
        source = {"src": os.path.abspath(src), "sha256": sha256_file(src)}
        link_symbols = dict((fn, plugin_symbol(name, fn)) for fn in info["functions"])
        link_maps = dict((plugin_symbol(name, m), m) for m in info["maps"])
    else:
        check_input_file(obj, "plugin object")
        digest = sha256_file(obj)
        if sha256 and digest != sha256.lower():
            raise PluginError("object %s has sha256 %s, expected %s; refusing to load it"
                              % (obj, digest, sha256.lower()))
        info = describe_object(toolchain.cache_dir, obj, digest)
        if not info["functions"]:
            raise PluginError("plugin object %s defines no global function to hook" % obj)
        plain_sha = _stage(obj, digest)
        link_sha = _stage(gpl_license_copy(toolchain, obj))
        source = {"object": os.path.abspath(obj), "sha256": digest}
        # A prebuilt object cannot be renamed: its globals must be unique among
        # the plugins of a dispatcher, which the build checks.
        link_symbols = dict((fn, fn) for fn in info["functions"])
        link_maps = dict((m, m) for m in info["maps"])
        entries, prog_arrays = info["entries"], info["prog_arrays"]
        link_entries = []  # its entry programs stay programs: freplace mode only
    return Plugin(
        name=name,
        source=source,
        cflags=list(cflags),
        include_dirs=list(include_dirs),
        plain_sha256=plain_sha,
        link_sha256=link_sha,
        functions=info["functions"],
        maps=info["maps"],
        link_symbols=link_symbols,
        link_maps=link_maps,
        entries=entries,
        link_entries=link_entries,
        prog_arrays=prog_arrays,
    )


def _compile_namespaced(toolchain, name, src, cflags, include_dirs, defines, entries, info):
    """The namespaced compile with as many entry programs as possible moved to
    .text, so the linked dispatcher may call them (libbpf calls only into .text).
    An entry program also named elsewhere in the source (a prog array's
    initialiser: a tail-call target) cannot be moved and stays a program; the
    others still are. Returns (compiled or None, the moved entry programs)."""
    movable = sorted(fn for fn, entry in entries.items() if entry["family"])

    def moves(fns):
        return dict((fn, _as_function(plugin_symbol(name, fn), info["functions"][fn]["ret"])) for fn in fns)

    if not movable:
        return None, []
    # First guess, without a failing compile (failures are not cached, and a
    # rerun must start no clang): an entry program whose address is taken in
    # the source (`&stage` in a prog array's `.values`) stays a program.
    with open(src, "rb") as handle:
        text = handle.read().decode("utf-8", "replace")
    guess = [fn for fn in movable if not re.search(r"&\s*%s\b" % re.escape(fn), text)]
    if guess:
        try:
            return _compile(toolchain, src, cflags, include_dirs, dict(defines, **moves(guess))), guess
        except PluginError:
            pass
    if guess != movable:
        try:
            return _compile(toolchain, src, cflags, include_dirs, dict(defines, **moves(movable))), movable
        except PluginError:
            pass
    # One at a time (cached by content): keep those that compile moved.
    kept = []
    for fn in movable:
        try:
            _compile(toolchain, src, cflags, include_dirs, dict(defines, **moves([fn])))
            kept.append(fn)
        except PluginError:
            continue
    if not kept or len(kept) == len(movable):
        return None, []
    try:
        return _compile(toolchain, src, cflags, include_dirs, dict(defines, **moves(kept))), kept
    except PluginError:
        return None, []


def settings_module():
    """plugin_config.py (and the BTF types of map_data.py under it), imported
    when a plugin has settings."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import plugin_config
    return plugin_config


def build_shipped(cache_dir, name, obj, sha256, link_object, link_sha256, src, src_sha256, cflags=(), include_dirs=()):
    """The record of a plugin the controller compiled from source (build_on:
    controller): obj is its plain object, link_object its namespaced one (both
    shipped, both checked against their sha256), src and src_sha256 the
    controller's source. It is recorded exactly as this host would record its
    own build of that source, so moving a plugin's build between controller and
    target changes nothing when the objects are the same. Nothing on the host
    changes here. cache_dir: the compile cache (object descriptions)."""
    objects = []
    for path, digest, what in ((obj, sha256, "plugin object"), (link_object, link_sha256, "plugin link object")):
        check_input_file(path, what)
        found = sha256_file(path)
        if not digest or found != digest.lower():
            raise PluginError("%s %s has sha256 %s, expected %s; refusing to load it" % (what, path, found, digest))
        objects.append(found)
    info = describe_object(cache_dir, obj, objects[0])
    if not info["functions"]:
        raise PluginError("plugin object %s defines no global function to hook" % obj)
    linked = describe_object(cache_dir, link_object, objects[1])
    missing = sorted(fn for fn in info["functions"] if plugin_symbol(name, fn) not in linked["functions"])
    if missing:
        lacking = ", ".join(plugin_symbol(name, f) for f in missing)
        raise PluginError("%s is not the link object of plugin '%s': it lacks %s; build both objects from one "
                          "source for this plugin name" % (link_object, name, lacking))
    entries, prog_arrays = info["entries"], info["prog_arrays"]
    # An entry program the controller could move to .text is a plain function
    # of the link object; one it had to leave is still a program there.
    still_programs = linked["entries"]
    link_entries = sorted(fn for fn, entry in entries.items()
                          if entry["family"] and plugin_symbol(name, fn) not in still_programs)
    return Plugin(
        name=name,
        source={"src": src, "sha256": src_sha256},
        cflags=list(cflags),
        include_dirs=list(include_dirs),
        plain_sha256=_stage(obj, objects[0]),
        link_sha256=_stage(link_object, objects[1]),
        functions=info["functions"],
        maps=info["maps"],
        link_symbols=dict((fn, plugin_symbol(name, fn)) for fn in info["functions"]),
        link_maps=dict((plugin_symbol(name, m), m) for m in info["maps"]),
        entries=entries,
        link_entries=link_entries,
        prog_arrays=prog_arrays,
    )


def staged_path(digest):
    """The file build() made or checked for an object of this run (the
    controller ships these)."""
    return _STAGED[digest]


def _as_function(symbol, ret):
    """The -D value that turns an entry program's definition into a plain global
    function named symbol: its SEC() attribute is left on a prototype that is
    never defined, and the definition goes to .text.
    ``SEC("tc") int fn(struct __sk_buff *ctx) {...}`` reads
    ``SEC("tc") int dp_entry__<symbol>(void); int __attribute__((section(".text"))) <symbol>(...) {...}``."""
    return "dp_entry__%s(void); %s __attribute__((section(\".text\"))) %s" % (symbol, ret, symbol)


def configure(layout, record, config):
    """record with its settings (datapath_plugin's config) checked against
    and encoded by its plain object's BTF; ConfigError names what is wrong."""
    if not config and not record.config:
        return record
    data = settings_module().encode(record.name, object_file(layout, record.plain_sha256), config)
    return record.with_config(config, data)


def object_file(layout, digest):
    """The file of object digest: as this run built or checked it, else from the store."""
    return _STAGED.get(digest) or layout.object_path(digest)


# The license strings the kernel takes as GPL-compatible (license_is_gpl_compatible).
_GPL_COMPATIBLE = (b"GPL", b"GPL v2", b"GPL and additional rights", b"Dual BSD/GPL", b"Dual MIT/GPL", b"Dual MPL/GPL")
_TOOL_TIMEOUT = 60


def gpl_license_copy(toolchain, path):
    """The object to link: path itself, or, when its license section holds a
    GPL-compatible string other than "GPL" ("Dual BSD/GPL" ...), a copy whose
    license section says "GPL". libbpf's static linker refuses license sections
    that differ, and the dispatcher and most plugins say "GPL"; the kernel
    treats all these strings alike, so this changes nothing it checks. Other
    licenses are left as they are (the link then says the sections differ).
    llvm-objcopy (next to clang) does the ELF work; copies are cached by content."""
    if not toolchain.has_clang:
        return path  # a host that compiles nothing links the object as it is
    objcopy = os.path.join(os.path.dirname(os.path.realpath(toolchain.clang.path)), "llvm-objcopy")
    if not os.access(objcopy, os.X_OK):
        return path
    digest = sha256_file(path)
    out_dir = os.path.join(toolchain.cache_dir, "license-gpl")
    out = os.path.join(out_dir, digest + ".o")
    if os.path.exists(out):
        return out
    # An object that needs no copy (most say "GPL") is remembered too, so a
    # rerun starts no llvm-objcopy.
    as_is = os.path.join(out_dir, digest + ".as-is")
    if os.path.exists(as_is):
        return path
    from ansible_collections.ebpf.datapath.plugins.module_utils.clang_run import bounded
    makedirs_private(out_dir)
    section = os.path.join(out_dir, ".tmp-%s-%d.license" % (digest, os.getpid()))
    tmp = os.path.join(out_dir, ".tmp-%s-%d.o" % (digest, os.getpid()))
    try:
        license_text = _dump_license(toolchain, objcopy, path, section)
        if license_text is None:
            return path
        if license_text == b"GPL" or license_text not in _GPL_COMPATIBLE:
            atomic_write(as_is, b"")
            return path
        with open(section, "wb") as handle:
            handle.write(b"GPL\0")
        rc, _out, err = toolchain.run(bounded([objcopy, "--update-section", "license=" + section, path, tmp],
                                              _TOOL_TIMEOUT))
        if rc != 0:
            raise PluginError("llvm-objcopy could not set the license section of %s for linking: %s"
                              % (path, err.decode("utf-8", "replace")))
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
        return out
    finally:
        for leftover in (section, tmp):
            if os.path.exists(leftover):
                os.unlink(leftover)


def _dump_license(toolchain, objcopy, path, out):
    """The license string of the object at path (llvm-objcopy writes the
    section to out), or None when it has no license section."""
    from ansible_collections.ebpf.datapath.plugins.module_utils.clang_run import bounded
    rc, _out, _err = toolchain.run(bounded([objcopy, "-O", "binary", "--only-section=license", path, out],
                                           _TOOL_TIMEOUT))
    if rc != 0 or not os.path.exists(out):
        return None
    with open(out, "rb") as handle:
        data = handle.read()
    return data.split(b"\0", 1)[0] if data else None


def license_of(toolchain, path):
    """The license string of a BPF object (None: it has none), read with
    llvm-objcopy from clang's directory and remembered in the compile cache by
    the object's content, so a rerun starts no tool."""
    digest = sha256_file(path)
    out_dir = os.path.join(toolchain.cache_dir, "license")
    known = os.path.join(out_dir, digest)
    if os.path.exists(known):
        with open(known, "rb") as handle:
            data = handle.read()
        return data[1:] if data else None  # b"=" + text, or empty: none
    objcopy = os.path.join(os.path.dirname(os.path.realpath(toolchain.clang.path)), "llvm-objcopy")
    makedirs_private(out_dir)
    out = os.path.join(out_dir, ".tmp-%s-%d" % (digest, os.getpid()))
    try:
        text = _dump_license(toolchain, objcopy, path, out)
    finally:
        if os.path.exists(out):
            os.unlink(out)
    atomic_write(known, b"" if text is None else b"=" + text)
    return text


def reaches_cb4(toolchain, path, digest=None):
    """Whether the code of the BPF object at path may reach skb->cb[4]
    (object_info.reaches_cb4 of what llvm-readobj, beside clang, reads of
    it), remembered in the compile cache by the object's sha256 (cb4/), so a
    rebuild starts no tool. toolchain: a toolchain.Toolchain."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import object_info
    from ansible_collections.ebpf.datapath.plugins.module_utils.clang_run import bounded
    from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import ToolchainError
    digest = digest or sha256_file(path)
    known = os.path.join(toolchain.cache_dir, "cb4", digest)
    if os.path.exists(known):
        with open(known, "rb") as handle:
            return handle.read() == b"1"
    try:
        readobj = toolchain.llvm_tool("llvm-readobj")
        rc, out, err = toolchain.run(bounded([readobj, "--elf-output-style=JSON", "--sections", "--section-data",
                                              "--symbols", "--relocations", path], _TOOL_TIMEOUT))
    except (OSError, ToolchainError) as exc:
        raise PluginError("cannot read the code of %s with llvm-readobj: %s" % (path, exc))
    if rc != 0:
        raise PluginError("llvm-readobj could not read %s: %s" % (path, err.decode("utf-8", "replace").strip()))
    try:
        found = object_info.reaches_cb4(json.loads(out.decode("utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise PluginError("llvm-readobj's description of %s is not what this collection reads (%s: %s)"
                          % (path, type(exc).__name__, exc))
    makedirs_private(os.path.dirname(known))
    atomic_write(known, b"1" if found else b"0")
    return found


def _compile(toolchain, src, cflags, include_dirs, defines):
    from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import CompileError
    try:
        return toolchain.compile(src, cflags=list(cflags), include_dirs=list(include_dirs), defines=defines)
    except CompileError as exc:
        raise PluginError("clang could not compile %s:\n%s" % (src, exc.diagnostics), log=exc.diagnostics)


def _stage(path, digest=None):
    """Remember a built or checked object until pin_maps() stores it; its sha256."""
    digest = digest or sha256_file(path)
    _STAGED[digest] = path
    return digest


def _read_exactly(path, digest):
    """The bytes of path, refused unless they hash to digest: what is stored is
    what was checked, even if someone swaps the file in between."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise PluginError("%s is no longer a regular file; install the plugin again" % path)
        data = handle.read()
    found = hashlib.sha256(data).hexdigest()
    if found != digest:
        raise PluginError("%s changed while it was being installed (sha256 %s, checked %s); install the plugin again"
                          % (path, found, digest))
    return data


def store_objects(layout, record):
    """Put the record's objects into the content-addressed store (0600, atomic
    writes); returns the paths this call added."""
    added = []
    for digest in record.objects:
        dest = layout.object_path(digest)
        if os.path.exists(dest):
            continue
        staged = _STAGED.get(digest)
        if staged is None:
            raise PluginError("object %s of plugin '%s' is missing from %s; install the plugin again"
                              % (digest, record.name, layout.objects_dir))
        atomic_write(dest, _read_exactly(staged, digest))
        added.append(dest)
    return added


def maps_pinned(layout, record):
    return all(os.path.exists(layout.plugin_map_pin(record.name, m)) for m in record.maps)


def remove(layout, name):
    """Unpin the plugin's maps and remove its bpffs directory."""
    remove_bpffs_tree(layout.plugin_dir(name))
