# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one bootstrap of every pytest run: make the work tree importable as
``ansible_collections.ebpf.datapath`` and put tests/ on sys.path.

Collection code imports its siblings by their full collection path, so the
tests need a directory ``ansible_collections/ebpf/datapath`` that is this work
tree. ``build/ansible_collections/ebpf/datapath`` is a relative symlink to the
root (``make setup`` creates it too); ``build`` goes first on sys.path, and
``tests`` follows for the helpers there (``lab``, ``modrun``, ...).

pytest loads this file for every test under tests/ when the run's rootdir is
the work tree. tests/integration/conftest.py calls bootstrap() as well, for runs
whose rootdir is below tests/ (pytest started inside tests/integration, or that
conftest loaded as a plugin with ``-p conftest``). Under ``ansible-test units``
the collection already sits at a real ``ansible_collections/ebpf/datapath`` path
and this bootstrap changes nothing that matters.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
TESTS = os.path.join(ROOT, "tests")
NAMESPACE_DIR = os.path.join(BUILD, "ansible_collections", "ebpf")
LINK = os.path.join(NAMESPACE_DIR, "datapath")


def ensure_collection_link():
    """build/ansible_collections/ebpf/datapath -> the work tree, created or corrected."""
    if os.path.islink(LINK) and os.path.realpath(LINK) == os.path.realpath(ROOT):
        return LINK
    os.makedirs(NAMESPACE_DIR, exist_ok=True)
    # Build the new link beside the old one and rename it over, so parallel
    # pytest runs never see the path missing.
    tmp = "%s.tmp-%d" % (LINK, os.getpid())
    os.symlink(os.path.relpath(ROOT, NAMESPACE_DIR), tmp)
    try:
        os.replace(tmp, LINK)
    except OSError:
        os.unlink(tmp)
        raise
    return LINK


def bootstrap():
    """Idempotent: the link, sys.path, and the shared compile cache."""
    ensure_collection_link()
    for path in (TESTS, BUILD):  # BUILD ends up first
        if path not in sys.path:
            sys.path.insert(0, path)
    # One compile cache for every test, in-process engines and module runs alike
    # (see converge.Engine.toolchain): the host tiers warm it and the VM tier,
    # which runs the same clang under emulation, reuses it instead of compiling again.
    os.environ.setdefault("EBPF_DATAPATH_CACHE_DIR", os.path.join(BUILD, "test-cache"))


bootstrap()
