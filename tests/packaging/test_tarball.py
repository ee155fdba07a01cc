# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection tarball as `make build` makes it (ansible-galaxy collection
build): what a user installs, and nothing of the build or the tests' leftovers."""

import fnmatch
import os
import re
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Never in the tarball, wherever they are.
FORBIDDEN = ["*.o", "*.pyc", "*/__pycache__/*", ".git/*", ".venv/*", "build/*", "tests/output/*", ".hypothesis/*",
             "*/.hypothesis/*", ".pytest_cache/*", "*/.pytest_cache/*", ".ansible/*", ".cache/*",
             "changelogs/.plugin-cache.yaml", "benchmarks/results/tmp/*", "*.tar.gz"]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    """Build it, with a stray compiled object beside an example plugin (the
    tests and the demo compile next to sources, and a build must leave it out)."""
    stray = os.path.join(ROOT, "bpf", "examples", "stray-test-%d.o" % os.getpid())
    out = tmp_path_factory.mktemp("dist")
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    with open(stray, "wb") as handle:
        handle.write(b"\x7fELF not shipped")
    try:
        subprocess.run([galaxy, "collection", "build", "--force", "--output-path", str(out), ROOT],
                       check=True, capture_output=True, text=True)
    finally:
        os.unlink(stray)
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        version = yaml.safe_load(handle)["version"]
    path = out / ("ebpf-datapath-%s.tar.gz" % version)
    with tarfile.open(str(path)) as tar:
        return sorted(m.name for m in tar.getmembers() if m.isfile())


def test_no_build_leftovers(tarball):
    bad = [name for name in tarball if any(fnmatch.fnmatch(name, pattern) for pattern in FORBIDDEN)]
    assert bad == []


def test_what_users_need_is_there(tarball):
    for name in ("MANIFEST.json", "FILES.json", "README.md", "LICENSE", "CHANGELOG.md", "CHANGELOG.rst",
                 "meta/runtime.yml", "changelogs/changelog.yaml", "bpf/include/ebpf_datapath.h",
                 "bpf/examples/pktcount.c", "docs/collection/index.rst", "playbooks/demo.yml"):
        assert name in tarball, name
    for module in os.listdir(os.path.join(ROOT, "plugins", "modules")):
        if module.endswith(".py"):
            assert "plugins/modules/" + module in tarball
    for role in os.listdir(os.path.join(ROOT, "roles")):
        assert "roles/%s/meta/argument_specs.yml" % role in tarball


def test_local_links_of_shipped_markdown_resolve_in_the_tarball(tarball):
    """README.md, BENCHMARKS.md and docs/*.md link images and pages by relative
    path: each must be in the tarball (BENCHMARKS.md's plots among them)."""
    names = set(tarball)
    checked = 0
    for doc in [n for n in tarball if n.endswith(".md") and not n.startswith(("tests/", "roles/"))]:
        with open(os.path.join(ROOT, doc), encoding="utf-8") as handle:
            text = handle.read()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = os.path.normpath(os.path.join(os.path.dirname(doc), target.split("#")[0]))
            assert path in names or any(n.startswith(path + "/") for n in names), "%s links %s" % (doc, target)
            checked += 1
    assert checked > 0
