# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep ``state_dir`` bounded: drop stored objects nothing needs any more and
trim the compile cache to a budget.

What grows with every chain change that rebuilds a plugin:

* ``objects/<sha256>.o``: the content-addressed plugin objects. An object is
  needed while the registry references it (an installed plugin, or a kept
  generation a rollback may return to). The rest are removed.
* the compile cache (``cache/``, see toolchain.py): ``objects/<recipe>/<key>.o``
  with its manifest ``<key>.json``, generated sources ``src/<sha256>/<name>.c``,
  static-linked dispatchers ``linked/<key>.o``, inline joins ``joined/<key>.o``
  (and their manifests), the controller's objects of generated C
  ``generated/<key>.o`` (build_on: controller, generated.py), and what
  plugin_store remembers of objects by their sha256 (licenses: ``license/``,
  ``license-gpl/``; what they hold: ``object-info/``; whether their code
  reaches skb->cb[4]: ``cb4/``): kept with their objects, the rest removed.
  Every entry can be made again from the sources (clang, the linker), so the
  cache is only a speed-up:
  entries whose object is a kept object are kept (a rerun finds them); the
  others are trimmed, oldest first, to ``cache_budget_bytes`` and
  ``cache_budget_entries`` (by default 8 MiB and 32 entries, see below).

Crash safety: prune only unlinks, one file at a time, and a compile entry's
manifest goes before its object (toolchain writes the object first), so a
killed prune leaves at worst an object without a manifest, which a lookup
ignores and the next prune removes. Nothing a kept generation or a rollback
needs is ever removed: the caller passes every object the registry still
references (referenced_objects() finds them) and holds the state lock.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import time

# The compile cache holds what the kept objects need plus, of the rest, the
# newest entries up to both limits: at most 32 entries (a compile, a linked
# dispatcher or a generated source each count one) and at most 8 MiB. A chain
# change that rebuilds one plugin leaves about 3 such entries (the plugin's two
# old compiles once their generation is dropped, one linked dispatcher), so the
# last ten or so changes stay warm; everything else can be built again.
DEFAULT_CACHE_BUDGET_BYTES = 8 * 1024 * 1024
DEFAULT_CACHE_BUDGET_ENTRIES = 32

# An object without a manifest is a compile that is still being written (the
# toolchain renames the object, then writes the manifest) or a prune that was
# killed between the two unlinks; only the second kind gets old.
ORPHAN_AGE_SECONDS = 3600

_SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")


class PruneReport:
    """What one prune removed and what is left.

    objects_removed: sha256 of every stored object removed;
    cache_files_removed: how many cache files were removed;
    bytes_freed: their total size with the objects';
    cache_bytes, cache_entries: size and entries of the cache left (kept and budgeted);
    cache_budget_bytes, cache_budget_entries: the limits applied to the entries
    no kept object needs."""

    __slots__ = ("objects_removed", "cache_files_removed", "bytes_freed", "cache_bytes", "cache_entries",
                 "cache_budget_bytes", "cache_budget_entries")

    def __init__(self, cache_budget_bytes, cache_budget_entries):
        self.objects_removed = []
        self.cache_files_removed = 0
        self.bytes_freed = 0
        self.cache_bytes = 0
        self.cache_entries = 0
        self.cache_budget_bytes = cache_budget_bytes
        self.cache_budget_entries = cache_budget_entries

    def as_dict(self):
        return dict((name, getattr(self, name)) for name in self.__slots__)

    def __repr__(self):
        return "PruneReport(%r)" % (self.as_dict(),)


class _Entry:
    """Files of the cache that go together, removed in order (manifest first)."""

    __slots__ = ("files", "size", "mtime", "kept")  # mtime None: an orphan, always removed

    def __init__(self, files, size, mtime, kept):
        self.files = files
        self.size = size
        self.mtime = mtime
        self.kept = kept


def referenced_objects(registry_data):
    """Every sha256 the registry names anywhere (plugins' objects, the recipes
    of kept generations, fingerprints): whatever the schema, an object the
    registry mentions is kept. Keeping a fingerprint that names no object costs
    nothing; forgetting an object a rollback needs would break the rollback."""
    found = set()
    stack = [registry_data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and _SHA256.match(value):
            found.add(value)
    return found


def _stat(path):
    try:
        return os.lstat(path)
    except OSError:
        return None


def _unlink(path, report):
    """Remove one file; True when it was there (a concurrent reader may have gone first)."""
    st = _stat(path)
    try:
        os.unlink(path)
    except OSError:
        return False
    report.bytes_freed += st.st_size if st is not None else 0
    return True


def _rmdir_if_empty(path):
    try:
        os.rmdir(path)
    except OSError:
        pass


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _prune_store(objects_dir, keep, report):
    for name in _listdir(objects_dir):
        if name.startswith("."):
            continue  # a write in progress or a temp file: state.remove_stale_temp_files
        digest = name.split(".", 1)[0]
        if not _SHA256.match(digest) or digest in keep:
            continue
        path = os.path.join(objects_dir, name)
        if os.path.isfile(path) and _unlink(path, report):
            report.objects_removed.append(digest)


def _manifest_sha(path):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8")).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _compile_entries(cache_dir, keep, now):
    """Entries of cache/objects/<recipe>/: (manifest, object) pairs and orphans."""
    entries = []
    top = os.path.join(cache_dir, "objects")
    for recipe in _listdir(top):
        recipe_dir = os.path.join(top, recipe)
        names = set(n for n in _listdir(recipe_dir) if not n.startswith("."))
        for name in sorted(names):
            key, ext = os.path.splitext(name)
            path = os.path.join(recipe_dir, name)
            st = _stat(path)
            if st is None:
                continue
            if ext == ".json":
                # An object, or bitcode (inline mode: toolchain.compile(bitcode=True)).
                obj = os.path.join(recipe_dir, key + (".bc" if key + ".bc" in names else ".o"))
                obj_st = _stat(obj)
                files = [path] + ([obj] if obj_st is not None else [])
                size = st.st_size + (obj_st.st_size if obj_st is not None else 0)
                entries.append(_Entry(files, size, st.st_mtime, _manifest_sha(path) in keep))
            elif ext in (".o", ".bc") and key + ".json" not in names and now - st.st_mtime > ORPHAN_AGE_SECONDS:
                entries.append(_Entry([path], st.st_size, None, False))  # no lookup uses it
    return entries


def _file_entries(directory, depth):
    """Single-file entries: linked/<key>.o or generated/<key>.o (depth 1), or src/<sha>/<name> (depth 2)."""
    entries = []
    for name in _listdir(directory):
        if name.startswith("."):
            continue
        path = os.path.join(directory, name)
        if depth > 1:
            entries.extend(_file_entries(path, depth - 1))
            continue
        st = _stat(path)
        if st is not None and os.path.isfile(path):
            entries.append(_Entry([path], st.st_size, st.st_mtime, False))
    return entries


def _by_object_entries(cache_dir, keep):
    """What plugin_store remembers of an object by its sha256: license/<sha256>
    (its license string), license-gpl/<sha256>.as-is (no GPL copy needed),
    license-gpl/<sha256>.o (the copy), object-info/<sha256>.json (what it
    holds) and cb4/<sha256> (whether its code reaches skb->cb[4]). Kept while
    the object (or the copy) is kept; the rest are one run of an LLVM tool or
    one read with libbpf away."""
    entries = []
    for sub in ("license", "license-gpl", "object-info", "cb4"):
        top = os.path.join(cache_dir, sub)
        for name in _listdir(top):
            if name.startswith("."):
                continue
            path = os.path.join(top, name)
            st = _stat(path)
            if st is None:
                continue
            digest, ext = os.path.splitext(name)
            kept = digest in keep or (ext == ".o" and _sha256_of(path) in keep)
            entries.append(_Entry([path], st.st_size, st.st_mtime, kept))
    return entries


def _sha256_of(path):
    import hashlib
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def _trim_cache(cache_dir, keep, budget_bytes, budget_entries, report):
    now = time.time()
    for entry in _by_object_entries(cache_dir, keep):
        if entry.kept:
            report.cache_bytes += entry.size
            report.cache_entries += 1
        else:
            for path in entry.files:
                if _unlink(path, report):
                    report.cache_files_removed += 1
    entries = (_compile_entries(cache_dir, keep, now) + _file_entries(os.path.join(cache_dir, "linked"), 1) +
               _file_entries(os.path.join(cache_dir, "joined"), 1) +
               _file_entries(os.path.join(cache_dir, "generated"), 1) + _file_entries(os.path.join(cache_dir, "src"), 2))
    orphans = [e for e in entries if e.mtime is None]
    entries = [e for e in entries if e.mtime is not None]
    used_bytes = used_entries = 0
    full = False
    # Newest first: what the last changes built stays warm; from the first entry
    # that does not fit on, everything older goes.
    for entry in sorted(entries, key=lambda e: e.mtime, reverse=True) + orphans:
        if entry.mtime is None:
            full = True
        elif not entry.kept and (used_bytes + entry.size > budget_bytes or used_entries + 1 > budget_entries):
            full = True
        if entry.kept or not full:
            if not entry.kept:
                used_bytes += entry.size
                used_entries += 1
            report.cache_bytes += entry.size
            report.cache_entries += 1
            continue
        for path in entry.files:
            if _unlink(path, report):
                report.cache_files_removed += 1
    for sub in ("objects", "src"):
        top = os.path.join(cache_dir, sub)
        for name in _listdir(top):
            _rmdir_if_empty(os.path.join(top, name))


def prune(layout, keep_objects, cache_budget_bytes=None, cache_budget_entries=None, cache_dir=None):
    """Remove stored objects not in keep_objects and trim the compile cache.

    layout: state.Layout (objects_dir, cache_dir); keep_objects: sha256 of every
    object still needed (referenced_objects(registry)); cache_budget_bytes and
    cache_budget_entries: limits of the cache entries no kept object needs (None:
    the defaults above); cache_dir: the cache to trim when it is not
    layout.cache_dir. The caller holds the state lock. Returns a PruneReport."""
    budget_bytes = DEFAULT_CACHE_BUDGET_BYTES if cache_budget_bytes is None else int(cache_budget_bytes)
    budget_entries = DEFAULT_CACHE_BUDGET_ENTRIES if cache_budget_entries is None else int(cache_budget_entries)
    if budget_bytes < 0 or budget_entries < 0:
        raise ValueError("cache budgets must be >= 0, got %d bytes and %d entries" % (budget_bytes, budget_entries))
    keep = set(keep_objects)
    report = PruneReport(budget_bytes, budget_entries)
    _prune_store(layout.objects_dir, keep, report)
    _trim_cache(cache_dir or layout.cache_dir, keep, budget_bytes, budget_entries, report)
    return report
