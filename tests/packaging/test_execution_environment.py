# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's execution-environment metadata as ansible-builder reads it.

The collection is built and installed the way a user gets it (ansible-galaxy
collection build, then install into a scratch collections dir), and
`ansible-builder introspect --sanitize` reads its meta/execution-environment.yml,
requirements.txt and bindep.txt from there: so the test also proves the three
files are in the artifact, not left out by build_ignore.
"""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
ORIGIN = "# from collection ebpf.datapath"

# What a controller needs to compile plugins (build_on: controller) and to run
# the modules against itself, by bindep platform.
SYSTEM = {
    "dpkg": ["clang", "llvm", "libbpf-dev", "linux-libc-dev", "libc6-dev", "libbpf1", "bpftool"],
    "rpm": ["clang", "llvm", "libbpf-devel", "kernel-headers", "glibc-devel", "libbpf", "bpftool"],
}
PYTHON = ["pyroute2"]


def _tool(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        pytest.fail("%s is not installed in %s: requirements-dev.txt must pin ansible-builder (which brings "
                    "bindep) and make setup install it" % (name, BIN))
    return path


@pytest.fixture(scope="module")
def collections_dir(tmp_path_factory):
    """A collections dir holding ebpf.datapath installed from its tarball."""
    dist = tmp_path_factory.mktemp("ee-dist")
    cols = tmp_path_factory.mktemp("ee-collections")
    galaxy = os.path.join(BIN, "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--force", "--output-path", str(dist), ROOT],
                   check=True, capture_output=True, text=True)
    tarballs = [p for p in os.listdir(str(dist)) if p.endswith(".tar.gz")]
    assert len(tarballs) == 1, tarballs
    subprocess.run([galaxy, "collection", "install", "--force", "-p", str(cols), str(dist / tarballs[0])],
                   check=True, capture_output=True, text=True)
    installed = cols / "ansible_collections" / "ebpf" / "datapath"
    for name in ("meta/execution-environment.yml", "requirements.txt", "bindep.txt"):
        assert (installed / name).is_file(), "%s is not in the collection artifact" % name
    return cols


@pytest.fixture(scope="module")
def introspected(collections_dir):
    proc = subprocess.run([_tool("ansible-builder"), "introspect", "--sanitize", str(collections_dir)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The report is "# Dependency data for <dir>" and a YAML document.
    return yaml.safe_load(proc.stdout.split("---", 1)[1])


def _entries(lines):
    """'name [platform:x]  # from collection ...' -> (name, platform tags), ours only."""
    out = []
    for line in lines:
        assert line.endswith(ORIGIN), line
        spec = line[:-len(ORIGIN)].strip()
        name, _sep, tags = spec.partition(" ")
        out.append((name, tags.strip()))
    return out


def test_introspect_lists_the_compiler_and_libbpf_for_each_platform(introspected):
    entries = _entries(introspected["system"])
    for platform, names in SYSTEM.items():
        tagged = [name for name, tags in entries if tags == "[platform:%s]" % platform]
        assert sorted(tagged) == sorted(names), platform
    # Every entry carries a platform tag: no package name is guessed for a family.
    assert all(tags for _name, tags in entries)


def test_introspect_lists_the_python_requirements(introspected):
    names = [spec.split(">=")[0].split("==")[0].strip() for spec, _tags in _entries(introspected["python"])]
    assert names == PYTHON


def test_bindep_selects_the_debian_names_here_and_apt_knows_them():
    """On this Debian host bindep picks exactly the dpkg names, and each one is
    a package apt can install (a typo in a name would only show in an EE build)."""
    if not shutil.which("dpkg-query") or not shutil.which("apt-cache"):
        pytest.skip("not a dpkg host: the rpm names are checked by introspect only")
    proc = subprocess.run([_tool("bindep"), "--list_all=newline", "--file", os.path.join(ROOT, "bindep.txt")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(proc.stdout.split()) == sorted(SYSTEM["dpkg"])
    for name in SYSTEM["dpkg"]:
        show = subprocess.run(["apt-cache", "show", "--no-all-versions", name], capture_output=True, text=True,
                              check=False)
        assert show.returncode == 0 and "Package: %s" % name in show.stdout, name
