# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""prune.py on a real state_dir: the object store and a compile cache filled by
the real clang (no root needed). Kept objects and their cache entries survive
any budget, the rest goes oldest first, and a prune killed half-way leaves a
store and a cache the toolchain still reads correctly."""

import json
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
BUILD = os.path.join(ROOT, "build")
if BUILD not in sys.path:
    sys.path.insert(0, BUILD)

from ansible_collections.ebpf.datapath.plugins.module_utils import prune as prune_mod  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils.prune import (  # noqa: E402
    DEFAULT_CACHE_BUDGET_BYTES, DEFAULT_CACHE_BUDGET_ENTRIES, ORPHAN_AGE_SECONDS, prune, referenced_objects)
from ansible_collections.ebpf.datapath.plugins.module_utils.state import Layout  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")

SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("tc") int prog(struct __sk_buff *skb) { return %d; }
char LICENSE[] SEC("license") = "GPL";
"""


def files_under(top):
    found = []
    for dirpath, _dirs, names in os.walk(top):
        found.extend(os.path.join(dirpath, n) for n in names)
    return sorted(found)


@pytest.fixture
def host(tmp_path):
    layout = Layout(bpffs_root=str(tmp_path / "bpffs"), state_dir=str(tmp_path / "state"))
    os.makedirs(layout.objects_dir)
    return layout, Toolchain(layout.cache_dir, run_subprocess)


def compile_n(toolchain, count, start=0, age_step=100):
    """count compiles of distinct sources, each one age_step s older than the next."""
    results = []
    for i in range(start, start + count):
        result = toolchain.compile_source_text(SOURCE % i, "prog%d" % i)
        results.append(result)
    now = os.path.getmtime(results[-1].object_path)
    for age, result in enumerate(reversed(results)):
        stamp = now - age * age_step
        for path in [result.object_path, result.object_path[:-2] + ".json"]:
            os.utime(path, (stamp, stamp))
    return results


def store(layout, digest, data=b"object"):
    path = layout.object_path(digest)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def test_store_keeps_exactly_the_kept_objects(host):
    layout, _tc = host
    kept = [("%064x" % i) for i in range(3)]
    gone = [("%064x" % i) for i in range(3, 8)]
    for digest in kept + gone:
        store(layout, digest)
    temp = os.path.join(layout.objects_dir, ".tmp-abc")
    open(temp, "wb").close()
    other = os.path.join(layout.objects_dir, "README")
    open(other, "wb").close()

    report = prune(layout, set(kept), cache_budget_bytes=0)

    assert sorted(report.objects_removed) == sorted(gone)
    assert sorted(os.listdir(layout.objects_dir)) == sorted([d + ".o" for d in kept] + [".tmp-abc", "README"])
    assert report.bytes_freed == len(gone) * len(b"object")
    # A second prune finds nothing left to do.
    assert prune(layout, set(kept), cache_budget_bytes=0).objects_removed == []


def test_kept_cache_entries_survive_a_zero_budget_and_still_hit(host):
    layout, toolchain = host
    probe_memo = os.path.join(layout.cache_dir, "clang-probe.json")
    os.makedirs(layout.cache_dir, exist_ok=True)
    with open(probe_memo, "w") as handle:
        handle.write("{}")
    results = compile_n(toolchain, 6)
    keep = set(r.sha256 for r in results[:2])  # the two oldest are the kept ones

    report = prune(layout, keep, cache_budget_bytes=0)

    left = files_under(layout.cache_dir)
    for result in results[:2]:
        assert result.object_path in left
        assert result.object_path[:-2] + ".json" in left
    for result in results[2:]:
        assert result.object_path not in left
        assert result.object_path[:-2] + ".json" not in left
    assert report.cache_files_removed >= 2 * 4
    # The toolchain still serves the kept entries without clang and rebuilds the others.
    runs = toolchain.clang_runs
    for i, result in enumerate(results):
        again = toolchain.compile_source_text(SOURCE % i, "prog%d" % i)
        assert again.sha256 == result.sha256
        assert again.cached is (i < 2)
    assert toolchain.clang_runs == runs + 4
    # The probe memo is no cache entry: never trimmed.
    assert os.path.exists(probe_memo)


def test_budget_trims_the_oldest_entries_first(host):
    layout, toolchain = host
    results = compile_n(toolchain, 8)
    sizes = [os.path.getsize(r.object_path) + os.path.getsize(r.object_path[:-2] + ".json") for r in results]
    # Room for the three newest compile entries, not for the fourth (sources come after them).
    budget = sum(sizes[-3:]) + sizes[-4] // 2
    for path in files_under(os.path.join(layout.cache_dir, "src")):
        os.utime(path, (1, 1))  # sources the oldest of all

    report = prune(layout, set(), cache_budget_bytes=budget)

    left = files_under(layout.cache_dir)
    assert [r.object_path in left for r in results] == [False] * 5 + [True] * 3
    assert files_under(os.path.join(layout.cache_dir, "src")) == []
    assert report.cache_bytes == sum(sizes[-3:]) <= budget
    # Empty recipe and source directories go too.
    recipes = os.listdir(os.path.join(layout.cache_dir, "objects"))
    assert len(recipes) == 3


def test_entry_budget_keeps_the_newest_entries(host):
    layout, toolchain = host
    results = compile_n(toolchain, 6)
    for path in files_under(os.path.join(layout.cache_dir, "src")):
        os.utime(path, (1, 1))
    report = prune(layout, set([results[0].sha256]), cache_budget_entries=2)
    left = files_under(layout.cache_dir)
    # The kept (oldest) one, and the two newest of the rest.
    assert [r.object_path in left for r in results] == [True, False, False, False, True, True]
    assert report.cache_entries == 3


def test_defaults_are_documented_and_bound_the_cache(host):
    layout, toolchain = host
    assert "8 MiB" in prune_mod.__doc__ and "32 entries" in prune_mod.__doc__
    assert (DEFAULT_CACHE_BUDGET_BYTES, DEFAULT_CACHE_BUDGET_ENTRIES) == (8 * 1024 * 1024, 32)
    compile_n(toolchain, 20)  # 40 entries: 20 compiles, 20 sources
    report = prune(layout, set())
    assert report.cache_entries == DEFAULT_CACHE_BUDGET_ENTRIES


def test_a_killed_prune_leaves_a_cache_the_toolchain_reads_and_the_next_prune_finishes(host, monkeypatch):
    layout, toolchain = host
    results = compile_n(toolchain, 3)
    victim = results[0]
    manifest = victim.object_path[:-2] + ".json"
    real_unlink = os.unlink
    calls = []

    def killed_after_first(path):
        if "/cache/objects/" not in path:
            return real_unlink(path)
        calls.append(path)
        if len(calls) > 1:
            raise KeyboardInterrupt("killed")  # stands in for SIGKILL between two unlinks
        real_unlink(path)

    monkeypatch.setattr(prune_mod.os, "unlink", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        prune(layout, set(r.sha256 for r in results[1:]), cache_budget_bytes=0)
    monkeypatch.setattr(prune_mod.os, "unlink", real_unlink)

    # The manifest went first: what is left is an object no lookup uses.
    assert calls[0] == manifest
    assert not os.path.exists(manifest) and os.path.exists(victim.object_path)
    runs = toolchain.clang_runs
    again = toolchain.compile_source_text(SOURCE % 0, "prog0")
    assert (again.cached, again.sha256, toolchain.clang_runs) == (False, victim.sha256, runs + 1)

    # An orphan object (manifest gone, object left) is removed once it is old.
    os.unlink(manifest)
    stamp = os.path.getmtime(victim.object_path) - ORPHAN_AGE_SECONDS - 10
    os.utime(victim.object_path, (stamp, stamp))
    prune(layout, set(r.sha256 for r in results), cache_budget_bytes=10 ** 9)
    assert not os.path.exists(victim.object_path)
    for result in results[1:]:
        assert os.path.exists(result.object_path)


def test_a_young_orphan_object_is_left_to_the_compile_that_writes_its_manifest(host):
    layout, toolchain = host
    result = compile_n(toolchain, 1)[0]
    os.unlink(result.object_path[:-2] + ".json")
    prune(layout, set(), cache_budget_bytes=0)
    assert os.path.exists(result.object_path)


def test_referenced_objects_finds_every_sha256_of_a_registry():
    with open(os.path.join(DATA, "registry-v1.json")) as handle:
        registry = json.load(handle)
    found = referenced_objects(registry)
    expected = set()
    for plugin in registry["plugins"].values():
        expected.update([plugin["plain_sha256"], plugin["link_sha256"]])
    for disp in registry["dispatchers"].values():
        for gen in disp["generations"]:  # what a rollback links again
            for digests in gen["recipe"]["objects"].values():
                expected.update(digests)
    assert expected and expected <= found
    assert all(len(d) == 64 for d in found)
    assert referenced_objects({"a": [{"x": "f" * 64, "sha256": "nothex"}], "b": ["E" * 64, 3]}) == {"f" * 64}


def test_a_negative_budget_is_refused(host):
    layout, _tc = host
    with pytest.raises(ValueError):
        prune(layout, set(), cache_budget_bytes=-1)
    with pytest.raises(ValueError):
        prune(layout, set(), cache_budget_entries=-1)
