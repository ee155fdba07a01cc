# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the work tree importable as ``ansible_collections.ebpf.datapath``.

Collection code imports its siblings by their full collection path, so the
tests need a directory ``ansible_collections/ebpf/datapath`` that is this work
tree. ``build/ansible_collections/ebpf/datapath`` is a relative symlink to the
root (``make setup`` creates it too); ``build`` goes first on sys.path.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
NAMESPACE_DIR = os.path.join(BUILD, "ansible_collections", "ebpf")
LINK = os.path.join(NAMESPACE_DIR, "datapath")


def _ensure_link():
    if os.path.islink(LINK) and os.path.realpath(LINK) == os.path.realpath(ROOT):
        return
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


_ensure_link()
if BUILD not in sys.path:
    sys.path.insert(0, BUILD)

# One compile cache for every test, in-process engines and module runs alike
# (see converge.Engine.toolchain): the host tiers warm it and the VM tier, which
# runs the same clang under emulation, reuses it instead of compiling again.
os.environ.setdefault("EBPF_DATAPATH_CACHE_DIR", os.path.join(BUILD, "test-cache"))
