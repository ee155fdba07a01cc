# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File helpers shared by the state store and the compile cache.

One home for writing a file atomically, creating private directories and
hashing a file, so every writer under ``state_dir`` behaves the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import tempfile
import time

from ansible_collections.ebpf.datapath.plugins.module_utils.faults import crash_point


def makedirs_private(path):
    """Create a directory tree with mode 0700 on every directory we create."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path.rstrip("/"))
    if parent and not os.path.isdir(parent):
        makedirs_private(parent)
    try:
        os.mkdir(path, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise


def atomic_write(path, data, mode=0o600, crash_at="while_saving"):
    """Write bytes to path so that readers see the old or the new file, never a mix.

    Temp file in the same directory, fsync, rename, fsync the directory.
    """
    directory = os.path.dirname(path)
    makedirs_private(directory)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        crash_point(crash_at)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def sha256_file(path):
    """The hex sha256 of a file's content, read in 64 KiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_temp_files(directory, min_age=0.0):
    """Remove the ``.tmp-*`` files a killed writer left in directory (those at
    least min_age seconds old); a missing directory has none."""
    now = time.time()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not name.startswith(".tmp-"):
            continue
        path = os.path.join(directory, name)
        try:
            if min_age and now - os.lstat(path).st_mtime < min_age:
                continue
            os.unlink(path)
        except OSError:
            pass  # gone already
