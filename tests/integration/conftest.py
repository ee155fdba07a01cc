# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the host-kernel tests (root): the network lab, a private bpffs
directory and a private state directory, each removed when its test ends,
whether the test passed or not.

Importing this file also makes the collection importable as
``ansible_collections.ebpf.datapath`` (``<root>/build`` on sys.path, with the
symlink ``build/ansible_collections/ebpf/datapath -> <root>``) and puts tests/
on sys.path for ``lab`` and ``modrun``.
"""

import os
import secrets
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
TESTS = os.path.join(ROOT, "tests")
BPFFS = "/sys/fs/bpf"


def ensure_collection_link(root=ROOT):
    """build/ansible_collections/ebpf/datapath -> root (relative, as tests/conftest.py
    makes it), created or corrected."""
    parent = os.path.join(root, "build", "ansible_collections", "ebpf")
    link = os.path.join(parent, "datapath")
    os.makedirs(parent, exist_ok=True)
    if os.path.islink(link):
        if os.path.realpath(link) == os.path.realpath(root):
            return link
        tmp = "%s.tmp-%d" % (link, os.getpid())
        os.symlink(os.path.relpath(root, parent), tmp)
        os.replace(tmp, link)  # atomic: a parallel run never sees no link
    elif not os.path.exists(link):
        try:
            os.symlink(os.path.relpath(root, parent), link)
        except FileExistsError:
            pass  # a parallel run made it
    return link


ensure_collection_link()
# The same shared compile cache as tests/conftest.py sets, for runs started in
# tests/integration (pytest then does not load tests/conftest.py).
os.environ.setdefault("EBPF_DATAPATH_CACHE_DIR", os.path.join(BUILD, "test-cache"))
for _path in (BUILD, TESTS):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from lab import Lab, remove_tree  # noqa: E402


def bpffs_mounted(path=BPFFS):
    with open("/proc/self/mounts") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 3 and fields[1] == path and fields[2] == "bpf":
                return True
    return False


def ensure_bpffs(path=BPFFS):
    if not bpffs_mounted(path):
        subprocess.run(["mount", "-t", "bpf", "bpf", path], check=True, capture_output=True)


@pytest.fixture
def lab():
    """Namespaces a and b joined by a veth pair, IPv4 and IPv6 (see tests/lab.py)."""
    the_lab = Lab()
    try:
        the_lab.setup()
        yield the_lab
    finally:
        the_lab.close()


@pytest.fixture
def bpffs_root():
    """A fresh directory /sys/fs/bpf/dpt-<random>, unpinned and removed afterwards."""
    ensure_bpffs()
    path = os.path.join(BPFFS, "dpt-" + secrets.token_hex(4))
    os.mkdir(path, 0o700)
    try:
        yield path
    finally:
        remove_tree(path)


@pytest.fixture
def state_dir(tmp_path):
    """A private state_dir (registry, lock, object store, compile cache)."""
    return str(tmp_path / "state")
