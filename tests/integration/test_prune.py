# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded disk: 20 and then 120 chain changes, each rebuilding one plugin,
through the real modules. state_dir's bytes and files and bpffs_root's pins
after 120 changes are within a quarter of what they were after 20: the engine
prunes the object store and its compile cache (plugins/module_utils/prune.py)
after every change, keeping what the kept generations and a bounded cache need.

The compile cache is the host's own (state_dir/cache), not the tests' shared
one, so what is measured is what a host keeps. Every rebuild is a real one (the
plugin's code differs, so its object and the dispatcher's link differ), and
the chain still counts real packets at the end; a rollback to the oldest kept
generation still works, so pruning took nothing a rollback needs.
"""

import os

from modhost import Host, OPEN_PORT, place, udp_burst

SOURCE = """\
// SPDX-License-Identifier: GPL-3.0-or-later
/* Counts packets; revision %(rev)d differs in code only (a length no packet has). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
\t__uint(type, BPF_MAP_TYPE_ARRAY);
\t__uint(max_entries, 2);
\t__type(key, __u32);
\t__type(value, __u64);
} counts SEC(".maps");

__attribute__((noinline)) int count(struct __sk_buff *ctx)
{
\t__u32 key = 0;
\t__u64 *v = bpf_map_lookup_elem(&counts, &key);

\tif (v)
\t\t__sync_fetch_and_add(v, ctx->len == %(never)d ? 0 : 1);
\treturn -1;
}

char LICENSE[] SEC("license") = "GPL";
"""

TOLERANCE = 0.25


def footprint(state_dir, bpffs_root):
    """(bytes of state_dir's files, number of its files, number of pins)."""
    size = files = 0
    for dirpath, _dirs, names in os.walk(state_dir):
        for name in names:
            size += os.lstat(os.path.join(dirpath, name)).st_size
            files += 1
    pins = sum(len(names) for _dirpath, _dirs, names in os.walk(bpffs_root))
    return size, files, pins


def test_disk_and_pins_stay_flat_over_120_rebuilding_changes(lab, bpffs_root, state_dir, tmp_path, monkeypatch):
    # The host's own cache, inside state_dir, is the one the engine prunes.
    monkeypatch.setenv("EBPF_DATAPATH_CACHE_DIR", os.path.join(state_dir, "cache"))
    lab.quiet()
    host = Host(lab, bpffs_root, state_dir)
    src = str(tmp_path / "rebuilt.c")

    def change(rev):
        with open(src, "w") as handle:
            handle.write(SOURCE % {"rev": rev, "never": 100000 + rev})
        result = host.run("datapath_plugin", name="rebuilt", src=src)
        assert result["changed"] is True, "revision %d must rebuild the plugin" % rev

    change(0)
    host.run("dispatcher", name="gw", attach="tc_ingress", mode="link",
             plugins=[{"plugin": "rebuilt", "function": "count"}], **place(lab, "b"))
    first_generation = host.run("datapath_info", dispatcher="gw")["dispatchers"][0]["generation"]
    for rev in range(1, 21):
        change(rev)
    after_20 = footprint(state_dir, bpffs_root)
    for rev in range(21, 121):
        change(rev)
    after_120 = footprint(state_dir, bpffs_root)

    info = host.run("datapath_info", dispatcher="gw")["dispatchers"][0]
    assert info["attached"] is True and info["generation"] > first_generation + 100, \
        "every plugin rebuild must have rebuilt the chain"
    before = host.counter("rebuilt")
    assert udp_burst(lab, OPEN_PORT, 7) == 7
    assert host.counter("rebuilt") - before == 7

    print("after 20 changes: %d bytes, %d files, %d pins; after 120: %d bytes, %d files, %d pins"
          % (after_20 + after_120))
    for what, at_20, at_120 in zip(("bytes of state_dir", "files of state_dir", "pins"), after_20, after_120):
        assert abs(at_120 - at_20) <= TOLERANCE * at_20, \
            "%s grew from %d after 20 changes to %d after 120" % (what, at_20, at_120)

    # Pruning kept what a rollback needs: the oldest kept generation runs again.
    oldest = min(g["number"] for g in info["generations"] if g["pinned"])
    back = host.run("datapath_rollback", dispatcher="gw", generation=oldest)
    assert back["changed"] is True
    before = host.counter("rebuilt")
    assert udp_burst(lab, OPEN_PORT, 5) == 5
    assert host.counter("rebuilt") - before == 5
    host.run("dispatcher", name="gw", state="absent")
