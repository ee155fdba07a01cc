# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roots.py and roots_claim.py: which roots a run may use, and the pair marker that binds them.

No kernel needed: a mounts file names a directory under tmp_path as a BPF
filesystem, so every rule of check_roots/claim_roots runs on plain
directories (a "pin" here is a regular file, as bpffs shows pins to stat).
The same rules against the real bpffs, with live dispatchers, are in
tests/integration/test_hardening_roots.py and test_roots_property.py.
"""

import json
import multiprocessing
import os
import stat
import sys
from urllib.parse import quote

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
BUILD = os.path.join(ROOT, "build")
if BUILD not in sys.path:
    sys.path.insert(0, BUILD)

from ansible_collections.ebpf.datapath.plugins.module_utils import roots  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError  # noqa: E402
from ansible_collections.ebpf.datapath.plugins.module_utils.roots import RootsError  # noqa: E402


class Box:
    """A fake host: tmp/bpf is "bpffs" (per the mounts file), tmp/var is not."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.bpf = os.path.join(self.tmp, "bpf")
        self.var = os.path.join(self.tmp, "var")
        os.mkdir(self.bpf, 0o700)
        os.mkdir(self.var, 0o700)
        self.mounts = os.path.join(self.tmp, "mounts")
        with open(self.mounts, "w") as handle:
            handle.write("/dev/root / ext4 rw 0 0\nbpf %s bpf rw 0 0\nproc /proc proc rw 0 0\n" % self.bpf)

    def b(self, name="dp"):
        return os.path.join(self.bpf, name)

    def s(self, name="state"):
        return os.path.join(self.var, name)

    def check(self, bpffs_root, state_dir):
        return roots.check_roots(bpffs_root, state_dir, mounts_file=self.mounts)

    def claim(self, bpffs_root, state_dir):
        return roots.claim_roots(bpffs_root, state_dir, mounts_file=self.mounts)

    def refused(self, bpffs_root, state_dir, *words):
        with pytest.raises(RootsError) as err:
            self.claim(bpffs_root, state_dir)
        msg = str(err.value)
        missing = [w for w in words if w not in msg]
        assert not missing, "message lacks %s: %s" % (missing, msg)
        return msg


@pytest.fixture
def box(tmp_path):
    return Box(tmp_path)


def tree(path):
    """{relative path: (mode, kind)} of everything under path (the oracle of "unchanged")."""
    found = {}
    if not os.path.lexists(path):
        return None
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [None] + dirnames + filenames:
            full = dirpath if name is None else os.path.join(dirpath, name)
            st = os.lstat(full)
            found[os.path.relpath(full, path)] = (stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode))
    return found


def pin(path):
    """A stand-in pin: a file, its directories made first."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write("pin")


def legacy_install(box, bpffs_root, state_dir, elsewhere=None):
    """A registry and pins as a release without markers left them (the
    registry's shape is the one tests/unit/plugins/module_utils/data/registry-v1.json
    has: map names per plugin, absolute prog_pin/link_pin paths)."""
    pin_root = elsewhere or bpffs_root
    os.makedirs(state_dir, 0o700)
    registry = {"version": 1, "plugins": {"counter": {"maps": {"counts": {}}}}, "dispatchers": {"d": {
        "generations": [{"number": 3, "prog_pin": os.path.join(pin_root, "dispatchers", "d", "gen-3", "prog")}],
        "attachment": {"link_pin": os.path.join(pin_root, "dispatchers", "d", "link-3")}}}}
    with open(os.path.join(state_dir, "registry.json"), "w") as handle:
        json.dump(registry, handle)
    open(os.path.join(state_dir, "lock"), "w").close()
    for rel in ("plugins/counter/maps/counts", "dispatchers/d/gen-3/prog", "dispatchers/d/link-3"):
        pin(os.path.join(bpffs_root, rel))


# ---------------------------------------------------------------- paths and places

@pytest.mark.parametrize("bpffs_root,state_dir,words", [
    ("relative", "/var/x", ["bpffs_root", "absolute"]),
    ("/sys/fs/bpf/x", "state", ["state_dir", "absolute"]),
    ("/sys/fs/bpf/x\0y", "/var/x", ["bpffs_root", "NUL"]),
    ("", "/var/x", ["bpffs_root", "empty"]),
])
def test_paths_must_be_absolute_without_nul(box, bpffs_root, state_dir, words):
    box.refused(bpffs_root, state_dir, *words)


def test_errors_are_datapath_errors():
    assert issubclass(RootsError, DatapathError)


def test_bpffs_root_must_be_on_bpffs(box):
    box.refused(box.s("not-bpf"), box.s(), "bpffs_root", "not on a BPF filesystem", "ext4")


def test_a_symlink_out_of_bpffs_is_followed(box):
    os.symlink(box.var, box.b("link"))
    box.refused(box.b("link"), box.s(), "not on a BPF filesystem")


@pytest.mark.parametrize("state_dir", ["/", "/etc", "/var/lib", "/tmp", "/usr", "/root", "/home"])
def test_system_directories_are_refused_as_state_dir(box, state_dir):
    box.refused(box.b(), state_dir, "state_dir %s is a system directory" % state_dir)
    assert not os.path.exists(box.b())


def test_a_symlink_to_a_system_directory_is_refused(box):
    os.symlink("/etc", box.s("etc-link"))
    box.refused(box.b(), box.s("etc-link"), "system directory")


def test_state_dir_on_a_virtual_filesystem_is_refused(box):
    box.refused(box.b(), os.path.join(box.bpf, "state"), "state_dir", "bpf filesystem")
    box.refused(box.b(), "/proc/dpt-state", "proc filesystem")


def test_the_bpffs_mount_itself_is_refused():
    with pytest.raises(RootsError) as err:
        roots.check_roots("/sys/fs/bpf", "/var/lib/dpt-nothing")
    assert "system directory" in str(err.value)


def test_bpffs_root_that_is_a_pin_names_the_real_cause(box):
    pin(box.b("dp/plugins/portdrop/maps/stats"))
    box.refused(box.b("dp/plugins/portdrop/maps/stats"), box.s(), "is a file, not a directory",
                "not one of the pins")
    box.refused(box.b("dp/plugins/portdrop/maps/stats/x"), box.s(), "cannot be made", "not a directory")


def test_state_dir_that_is_a_file_is_refused(box):
    pin(box.s("file"))
    box.refused(box.b(), box.s("file"), "regular file, not a directory")


def test_state_dir_writable_by_others_is_refused_and_left_alone(box):
    os.mkdir(box.s("open"), 0o700)
    os.chmod(box.s("open"), 0o777)
    box.refused(box.b(), box.s("open"), "writable by group or others", "chmod go-w")
    assert stat.S_IMODE(os.stat(box.s("open")).st_mode) == 0o777


# ---------------------------------------------------------------- claiming

def test_claim_makes_what_is_missing_private_and_marks_both(box):
    nested = box.s("a/b/state")
    pair = box.claim(box.b(), nested)
    for path in (box.s("a"), box.s("a/b"), nested, box.b()):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
    with open(os.path.join(nested, "pair.json")) as handle:
        marker = json.load(handle)
    assert marker == {"version": 1, "pair": pair, "bpffs_root": box.b(), "state_dir": nested}
    assert stat.S_IMODE(os.stat(os.path.join(nested, "pair.json")).st_mode) == 0o600
    assert os.listdir(box.b()) == ["pair-" + pair]
    assert roots.inspect_bpffs_root(box.b()).partner == nested
    # Idempotent: the same pair, nothing new.
    before = (tree(nested), tree(box.b()))
    assert box.claim(box.b(), nested) == pair
    assert (tree(nested), tree(box.b())) == before


def test_existing_empty_directories_keep_their_modes(box):
    os.mkdir(box.s(), 0o750)
    os.mkdir(box.b(), 0o755)
    box.claim(box.b(), box.s())
    assert stat.S_IMODE(os.stat(box.s()).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(box.b()).st_mode) == 0o755


def test_check_creates_nothing(box):
    claim = box.check(box.b(), box.s("new"))
    assert claim.pair is None and claim.state.kind == roots.ABSENT and claim.bpffs.kind == roots.ABSENT
    assert not os.path.exists(box.b()) and not os.path.exists(box.s("new"))


def _claim_in_child(args):
    tmp, bpffs_root, state_dir = args
    box = Box.__new__(Box)
    box.mounts = os.path.join(tmp, "mounts")
    try:
        return box.claim(bpffs_root, state_dir)
    except RootsError as exc:
        return "refused: %s" % exc


def test_concurrent_claims_agree_on_one_pair(box):
    with multiprocessing.get_context("fork").Pool(8) as pool:
        pairs = pool.map(_claim_in_child, [(box.tmp, box.b(), box.s())] * 16)
    assert len(set(pairs)) == 1 and not pairs[0].startswith("refused"), pairs
    assert os.listdir(box.b()) == ["pair-" + pairs[0]]


def test_two_state_dirs_racing_for_one_bpffs_root_end_with_one_owner(box):
    with multiprocessing.get_context("fork").Pool(8) as pool:
        results = pool.map(_claim_in_child, [(box.tmp, box.b(), box.s("s%d" % i)) for i in range(8)])
    winners = [r for r in results if not r.startswith("refused")]
    markers = [n for n in os.listdir(box.b()) if n.startswith("pair-")]
    assert len(markers) == 1 and set(winners) == set([markers[0][len("pair-"):]]), results
    assert all("not a pair" in r or "a moment ago" in r for r in results if r.startswith("refused")), results


# ---------------------------------------------------------------- whose roots

def test_a_fresh_state_dir_beside_a_live_bpffs_root_is_refused(box):
    """The typo of issue 16: it would have unpinned everything as crash leftovers."""
    pair = box.claim(box.b(), box.s())
    pin(box.b("dp/dispatchers/d/gen-1/prog"))
    before = tree(box.b())
    for typo in (box.s("stat"), box.s("empty")):
        if typo.endswith("empty"):
            os.mkdir(typo, 0o700)
        msg = box.refused(box.b(), typo, "not a pair", box.b(), typo, pair, "If state_dir is mistyped, give "
                          + box.s())
        assert tree(box.b()) == before
    assert not os.path.exists(box.s("stat")) and os.listdir(box.s("empty")) == [], msg


def test_a_fresh_bpffs_root_beside_a_live_state_dir_is_refused(box):
    box.claim(box.b(), box.s())
    box.refused(box.b("typo"), box.s(), "not a pair", "Give bpffs_root %s with this state_dir" % box.b())
    assert not os.path.exists(box.b("typo"))


def test_roots_of_two_pairs_crossed_are_refused_naming_both(box):
    one = box.claim(box.b("one"), box.s("one"))
    two = box.claim(box.b("two"), box.s("two"))
    msg = box.refused(box.b("one"), box.s("two"), box.b("one"), box.s("two"), one, two)
    assert "belongs to ebpf.datapath pair %s with state_dir %s" % (one, box.s("one")) in msg
    assert "belongs to ebpf.datapath pair %s with bpffs_root %s" % (two, box.b("two")) in msg


def test_a_state_dir_that_lost_its_marker_is_refused(box):
    box.claim(box.b(), box.s())
    pin(box.b("dp/plugins/x/maps/m"))
    os.unlink(os.path.join(box.s(), "pair.json"))
    box.refused(box.b(), box.s(), "lost its marker pair.json")


def test_a_damaged_marker_is_refused(box):
    box.claim(box.b(), box.s())
    with open(os.path.join(box.s(), "pair.json"), "w") as handle:
        handle.write("{not json")
    box.refused(box.b(), box.s(), "ownership marker", "cannot be read")


@pytest.mark.parametrize("which", ["state_dir", "bpffs_root"])
def test_foreign_directories_are_refused_and_left_alone(box, which):
    if which == "state_dir":
        os.mkdir(box.s(), 0o700)
        pin(box.s("state/notes.txt"))
    else:
        pin(box.b("dp/tc/globals/some_map"))
    before = (tree(box.s()), tree(box.b()))
    box.refused(box.b(), box.s(), which, "not ebpf.datapath's", "notes.txt" if which == "state_dir" else "'tc'")
    assert (tree(box.s()), tree(box.b())) == before


def test_roots_inside_another_pairs_roots_are_refused(box):
    box.claim(box.b(), box.s())
    box.refused(box.b("dp/sub"), box.s("other"), "bpffs_root", "inside %s" % box.b())
    box.refused(box.b("other"), box.s("state/sub"), "state_dir", "inside %s" % box.s())


def test_two_markers_in_one_bpffs_root_are_refused(box):
    pair = box.claim(box.b(), box.s())
    os.mkdir(box.b("dp/pair-" + "0" * 32))
    box.refused(box.b(), box.s(), "markers of 2 pairs", pair)


# ---------------------------------------------------------------- after a crash or a reboot

def test_a_reboot_empties_bpffs_and_the_pair_is_claimed_again(box):
    pair = box.claim(box.b(), box.s())
    pin(box.b("dp/plugins/x/maps/m"))
    for rel in ("plugins/x/maps/m",):
        os.unlink(box.b("dp/" + rel))
    for directory in ("plugins/x/maps", "plugins/x", "plugins", "pair-%s/state_dir=%s" % (
            pair, quote(box.s(), safe="")), "pair-" + pair, ""):
        os.rmdir(os.path.join(box.b(), directory))
    assert box.claim(box.b(), box.s()) == pair
    assert os.listdir(box.b()) == ["pair-" + pair]


def test_a_claim_killed_between_the_markers_is_completed(box):
    """state_dir's marker is written first; a run killed before bpffs_root's is
    adopted: bpffs_root is then empty, or holds what the registry records."""
    pair = box.claim(box.b(), box.s())
    roots.remove_marker(box.b(), pair)
    assert box.claim(box.b(), box.s()) == pair
    # ... and once the pair had pins recorded:
    registry = {"version": 1, "plugins": {"x": {"maps": ["m"]}}, "dispatchers": {}}
    with open(os.path.join(box.s(), "registry.json"), "w") as handle:
        json.dump(registry, handle)
    pin(box.b("dp/plugins/x/maps/m"))
    roots.remove_marker(box.b(), pair)
    assert box.claim(box.b(), box.s()) == pair


def test_a_marked_state_dir_does_not_adopt_unrecorded_pins(box):
    box.claim(box.b(), box.s())
    pair = roots.inspect_state_dir(box.s()).pair
    roots.remove_marker(box.b(), pair)
    pin(box.b("dp/plugins/someone/maps/m"))
    box.refused(box.b(), box.s(), "not a pair", "Nothing records the pins")


def test_release_removes_a_bpffs_root_holding_only_its_marker(box):
    pair = box.claim(box.b(), box.s())
    pin(box.b("dp/plugins/x/maps/m"))
    assert not roots.release_bpffs_root(box.b()) and os.path.isdir(box.b("dp/pair-" + pair))
    os.unlink(box.b("dp/plugins/x/maps/m"))
    for d in ("plugins/x/maps", "plugins/x", "plugins"):
        os.rmdir(box.b("dp/" + d))
    assert roots.release_bpffs_root(box.b()) and not os.path.exists(box.b())
    assert box.claim(box.b(), box.s()) == pair  # the next run claims it again


# ---------------------------------------------------------------- an install from before the markers

def test_an_install_without_markers_is_adopted_when_its_registry_proves_the_pins(box):
    legacy_install(box, box.b(), box.s())
    before = tree(box.b())
    pair = box.claim(box.b(), box.s())
    after = tree(box.b())
    assert set(after) - set(before) == set(["pair-" + pair, "pair-%s/state_dir=%s" % (
        pair, quote(box.s(), safe=""))])
    assert dict((k, v) for k, v in after.items() if not k.startswith("pair-")) == before
    assert roots.inspect_state_dir(box.s()).pair == pair


def test_an_install_without_markers_beside_a_fresh_state_dir_is_refused(box):
    legacy_install(box, box.b(), box.s())
    box.refused(box.b(), box.s("typo"), "not a pair", "without an ownership marker", "Nothing records the pins")


def test_a_registry_naming_another_bpffs_root_does_not_prove_the_pair(box):
    legacy_install(box, box.b(), box.s(), elsewhere=box.b("elsewhere"))
    box.refused(box.b(), box.s(), "records pins under another bpffs_root", box.b("elsewhere"))
    # ... nor does it claim an empty bpffs_root (a mistyped bpffs_root beside it).
    box.refused(box.b("new"), box.s(), "records pins under another bpffs_root")


def test_a_registry_whose_pins_are_all_gone_does_not_prove_the_pair(box):
    legacy_install(box, box.b("real"), box.s(), elsewhere=box.b())
    for rel in ("plugins/counter/maps/counts", "dispatchers/d/gen-3/prog", "dispatchers/d/link-3"):
        os.unlink(os.path.join(box.b("real"), rel))
    pin(box.b("dp/plugins/other/maps/m"))
    box.refused(box.b(), box.s(), "None of the 3 pins recorded")


def test_an_old_state_dir_after_a_reboot_is_adopted(box):
    legacy_install(box, box.b(), box.s())
    for dirpath, _dirnames, filenames in os.walk(box.b()):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
    pair = box.claim(box.b(), box.s())
    assert roots.inspect_bpffs_root(box.b()).pair == pair


# ---------------------------------------------------------------- shared numeric options

@pytest.mark.parametrize("value", [-1.0, 0.0, float("nan"), float("inf"), 86400.5, None])
def test_lock_timeout_out_of_range_is_refused_naming_the_option(value):
    from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import check_common
    with pytest.raises(DatapathError) as err:
        check_common({"lock_timeout": value})
    assert "lock_timeout" in str(err.value) and "at most 86400" in str(err.value)


@pytest.mark.parametrize("value", [0.001, 1, 300.0, 86400])
def test_lock_timeout_in_range_passes(value):
    from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import check_common
    check_common({"lock_timeout": value})
