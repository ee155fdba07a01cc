# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Claiming roots that carry no ownership marker yet (roots.py has the rules).

A first run, a run after a reboot emptied bpffs, and an install from before
the markers come here: prove that unmarked pins are this state_dir's (its
registry records them), then write the markers, state_dir's first. Every other
run finds both roots marked and never imports this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import tempfile

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover (python 2 is not supported on targets)
    from urllib import quote

from ansible_collections.ebpf.datapath.plugins.module_utils.files import makedirs_private
from ansible_collections.ebpf.datapath.plugins.module_utils.roots import (
    MARKER_FILE, MARKER_PREFIX, MARKER_VERSION, OURS, RootsError, bpffs_markers, mismatch, check_roots)


def claim(found, bpffs_root, state_dir, mounts_file):
    """Write what check_roots found missing (found: its roots.Claim): the
    state_dir and its marker, then bpffs_root's. Returns the pair id."""
    state_path, bpffs_path = found.state.path, found.bpffs.path
    pair = found.pair
    if found.state.kind != OURS:
        makedirs_private(state_path)
        pair = _write_state_marker(state_path, bpffs_path)
        if pair is None:  # another run claimed it a moment ago: take its pair
            found = check_roots(bpffs_root, state_dir, mounts_file)
            pair = found.pair
    if found.bpffs.kind != OURS:
        _mark_bpffs(bpffs_path, pair, state_path)
    return pair


def recorded_pins(state_dir, bpffs_root):
    """The pins the registry of state_dir records: (paths under bpffs_root,
    recorded absolute paths that are not under it)."""
    path = os.path.join(state_dir, "registry.json")
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
        plugins = data.get("plugins") or {}
        dispatchers = data.get("dispatchers") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise RootsError("state_dir %s has no ownership marker and its registry %s cannot be read (%s), so "
                         "nothing proves that bpffs_root %s is its pair" % (state_dir, path, exc, bpffs_root))
    inside, outside = set(), set()
    for name, record in plugins.items():
        for map_name in (record or {}).get("maps") or ():
            inside.add(os.path.join(bpffs_root, "plugins", name, "maps", map_name))

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("prog_pin", "link_pin") and isinstance(value, str):
                    value = os.path.normpath(value)
                    (inside if value.startswith(bpffs_root + "/") else outside).add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(dispatchers)
    return inside, outside


def prove(bpffs, state, must_exist):
    """Raise unless state_dir's registry proves the pins under bpffs_root are its own."""
    if not state.holds:
        if must_exist:
            raise mismatch(bpffs, state, "Nothing records the pins under bpffs_root in this state_dir: if "
                                         "state_dir is mistyped, give the state_dir those pins belong to; "
                                         "if they are no longer wanted, remove them (rm -r %s)" % bpffs.path)
        return
    inside, outside = recorded_pins(state.path, bpffs.path)
    if outside:
        raise mismatch(bpffs, state, "The registry in state_dir records pins under another bpffs_root (%s): "
                                     "give that bpffs_root" % sorted(outside)[0])
    if must_exist and not any(os.path.lexists(p) for p in inside):
        raise mismatch(bpffs, state, "None of the %d pins recorded in state_dir's registry exists under "
                                     "bpffs_root, so the pins there are not its own: give the state_dir "
                                     "they belong to" % len(inside))


def _write_state_marker(state_dir, bpffs_root):
    """Create <state_dir>/pair.json with a new pair id; None when it exists already."""
    import secrets  # here: only a first claim needs it, and every run would import it
    pair = secrets.token_hex(16)
    data = json.dumps({"version": MARKER_VERSION, "pair": pair, "bpffs_root": bpffs_root, "state_dir": state_dir},
                      sort_keys=True, indent=1).encode("utf-8") + b"\n"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=state_dir)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, os.path.join(state_dir, MARKER_FILE))  # never replaces a marker
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
            return None
    finally:
        os.unlink(tmp)
    dir_fd = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return pair


def _mark_bpffs(bpffs_root, pair, state_dir):
    """Put pair's marker into bpffs_root unless it carries one. Claims of one
    bpffs_root are serialized by flock(2) on the directory itself (bpffs holds
    no files to lock), so two state_dirs claiming it at once never both win."""
    for _attempt in range(3):
        makedirs_private(bpffs_root)
        try:
            fd = os.open(bpffs_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue  # released by another run a moment ago: make it again
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            markers = bpffs_markers(bpffs_root, os.listdir(bpffs_root))
            if markers:
                if list(markers) != [pair]:
                    raise RootsError("bpffs_root %s was claimed by another state_dir (%s) a moment ago, not by "
                                     "state_dir %s; give each bpffs_root its own state_dir"
                                     % (bpffs_root, list(markers.values())[0] or list(markers)[0], state_dir))
                return
            marker = os.path.join(bpffs_root, MARKER_PREFIX + pair)
            try:
                os.mkdir(marker, 0o700)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    continue
                raise
            name = "state_dir=" + quote(state_dir, safe="")
            if len(name.encode("utf-8")) <= 255:
                _mkdir(os.path.join(marker, name))
            return
        finally:
            os.close(fd)  # also releases the flock
    raise RootsError("bpffs_root %s vanished three times while this run claimed it; is another tool removing "
                     "it?" % bpffs_root)


def _mkdir(path):
    try:
        os.mkdir(path, 0o700)
        return True
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
        return False
