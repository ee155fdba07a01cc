# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the host-kernel tests (root): the network lab, a private bpffs
directory and a private state directory, each removed when its test ends,
whether the test passed or not.

Importing this file also runs tests/conftest.py's bootstrap (the collection
importable as ``ansible_collections.ebpf.datapath``, tests/ on sys.path for
``lab`` and ``modrun``), so it works on its own as well.
"""

import os
import secrets
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
TESTS = os.path.join(ROOT, "tests")
BPFFS = "/sys/fs/bpf"


def _bootstrap():
    """Run tests/conftest.py's bootstrap (the one place that makes the collection
    importable), also when pytest did not load that file: a run whose rootdir is
    tests/integration, or this file loaded as a plugin with ``-p conftest``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ebpf_datapath_tests_bootstrap", os.path.join(TESTS, "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BOOTSTRAP = _bootstrap()
ensure_collection_link = _BOOTSTRAP.ensure_collection_link

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
