# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host state: the registry file, the run lock, the bpffs layout and generations.

Everything the collection knows about a host lives in two trees:

* ``state_dir`` (default ``/var/lib/ebpf-datapath``): ``registry.json`` (what was
  asked for and what is running), ``objects/`` (content-addressed plugin objects),
  ``cache/`` (compiler cache) and the ``lock`` file;
* ``bpffs_root`` (default ``/sys/fs/bpf/ebpf-datapath``): the kernel objects we pin.

The registry is the recipe; bpffs holds the running objects. A run takes the lock,
reads the registry, changes the kernel, then writes the registry atomically, so a
crash at any instant leaves either the old or the new file, never half of one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import stat
import time

from ansible_collections.ebpf.datapath.plugins.module_utils.defaults import DEFAULT_BPFFS_ROOT, DEFAULT_STATE_DIR
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.files import atomic_write, makedirs_private, remove_temp_files
from ansible_collections.ebpf.datapath.plugins.module_utils.naming import safe_join
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import (
    RegistryData, registry_from_json, registry_to_json)


class StateError(DatapathError):
    """Something about the host's recorded state that the operator must fix."""


class LockTimeout(StateError):
    pass


class Layout:
    """Where things live. Every name is validated before it becomes a path."""

    def __init__(self, bpffs_root=DEFAULT_BPFFS_ROOT, state_dir=DEFAULT_STATE_DIR):
        self.bpffs_root = os.path.normpath(bpffs_root)
        self.state_dir = os.path.normpath(state_dir)

    # state_dir
    @property
    def registry_path(self):
        return os.path.join(self.state_dir, "registry.json")

    @property
    def lock_path(self):
        return os.path.join(self.state_dir, "lock")

    @property
    def objects_dir(self):
        return os.path.join(self.state_dir, "objects")

    @property
    def cache_dir(self):
        return os.path.join(self.state_dir, "cache")

    def object_path(self, sha256, suffix=".o"):
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise StateError("not a sha256 digest: %r" % (sha256,))
        return os.path.join(self.objects_dir, sha256 + suffix)

    # bpffs
    def plugin_dir(self, plugin):
        return safe_join(self.bpffs_root, "plugins", plugin)

    def plugin_maps_dir(self, plugin):
        return safe_join(self.bpffs_root, "plugins", plugin, "maps")

    def plugin_map_pin(self, plugin, map_name):
        return safe_join(self.bpffs_root, "plugins", plugin, "maps", map_name)

    def dispatcher_dir(self, dispatcher):
        return safe_join(self.bpffs_root, "dispatchers", dispatcher)

    def link_pin(self, dispatcher, number):
        """The pinned tcx/xdp link, named after the generation that attached it,
        so a dispatcher moving to a new attach point never meets its old pin."""
        return safe_join(self.bpffs_root, "dispatchers", dispatcher, "link-%d" % int(number))

    def generation_dir(self, dispatcher, number):
        return safe_join(self.bpffs_root, "dispatchers", dispatcher, "gen-%d" % int(number))

    def generation_prog_pin(self, dispatcher, number):
        return os.path.join(self.generation_dir(dispatcher, number), "prog")

    def ensure_state_dir(self):
        """Create state_dir (0700) if missing; an existing one keeps its mode
        (roots.claim_roots made or checked it)."""
        makedirs_private(self.state_dir)

    def ensure_bpffs_dir(self, path):
        """mkdir -p inside bpffs (pins are made by the kernel, directories by us)."""
        if not path.startswith(self.bpffs_root):
            raise StateError("refusing to write outside bpffs_root: %s" % path)
        makedirs_private(path)


def remove_bpffs_tree(path):
    """Unpin everything below path. Unpinning drops our reference; the kernel
    frees an object once nothing else (link, attachment, fd) holds it."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        for entry in os.listdir(path):
            remove_bpffs_tree(os.path.join(path, entry))
        os.rmdir(path)
    else:
        os.unlink(path)


def remove_empty_dirs(path, stop):
    """Remove path and its parents while empty, never going above stop."""
    path = os.path.normpath(path)
    stop = os.path.normpath(stop)
    while path.startswith(stop + os.sep) and os.path.isdir(path):
        try:
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)


class Lock:
    """An exclusive flock(2) on ``<state_dir>/lock`` held for a whole run.

    flock is released by the kernel when the holder dies, so a killed run never
    leaves a stale lock behind; the pid written into the file only makes the
    "who holds it" message useful.
    """

    def __init__(self, layout, timeout=300.0, poll=0.1):
        self.layout = layout
        self.timeout = timeout
        self.poll = poll
        self._fd = None

    def __enter__(self):
        self.layout.ensure_state_dir()
        fd = os.open(self.layout.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    holder = _read_small(fd)
                    os.close(fd)
                    raise LockTimeout(
                        "another ebpf.datapath run holds the lock %s (pid %s) for more than %ss; "
                        "wait for it to finish or raise lock_timeout"
                        % (self.layout.lock_path, holder or "unknown", int(self.timeout)))
                time.sleep(self.poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None
        return False


def _read_small(fd):
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""


class Registry:
    """The recorded recipe of a host (a schema.RegistryData: plugins and
    dispatchers as typed records). Load it under the lock, change the
    records, save it."""

    def __init__(self, layout, data=None):
        self.layout = layout
        self.data = data if data is not None else RegistryData()

    @classmethod
    def load(cls, layout):
        path = layout.registry_path
        if not os.path.lexists(path):
            return cls(layout)
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise StateError("%s is not a regular file; remove it and rerun" % path)
        with open(path, "rb") as handle:
            try:
                data = json.loads(handle.read().decode("utf-8"))
            except ValueError as exc:
                raise StateError("%s is not valid JSON (%s); move it away and rerun to rebuild" % (path, exc))
        return cls(layout, registry_from_json(data, path))

    def save(self, crash_at="while_saving"):
        self.layout.ensure_state_dir()
        text = json.dumps(registry_to_json(self.data), sort_keys=True, indent=2) + "\n"
        atomic_write(self.layout.registry_path, text.encode("utf-8"), crash_at=crash_at)

    @property
    def plugins(self):
        return self.data.plugins

    @property
    def dispatchers(self):
        return self.data.dispatchers

    def hooks_using_plugin(self, plugin):
        return self.data.hooks_using_plugin(plugin)

    def dispatchers_using(self, plugin):
        return self.data.dispatchers_using(plugin)


def remove_stale_temp_files(layout):
    """Remove the temp files a run killed mid-write left (call under the lock:
    then no other run can be writing one)."""
    for directory in (layout.state_dir, layout.objects_dir):
        remove_temp_files(directory)
