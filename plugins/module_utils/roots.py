# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whose roots are these? Validate ``bpffs_root`` and ``state_dir`` before a run
creates or changes anything, and bind the two to each other.

A run removes pins it has no record of (what a crashed run left). That is only
safe when the record and the pins belong together: a ``state_dir`` typed wrong
beside a live ``bpffs_root`` has no record of anything and would unpin a running
datapath. So the pair carries an ownership marker, written when a run first
claims the roots and checked before anything else:

* ``<state_dir>/pair.json``: ``{"version": 1, "pair": <random id>,
  "bpffs_root": ..., "state_dir": ...}``;
* ``<bpffs_root>/pair-<id>/`` (bpffs holds only pins and directories, so the
  marker is a directory whose name carries the id); inside it a directory named
  after the state_dir (percent-encoded), only so messages can name it.

Rules (check_roots; see docs/security.md):

* both paths absolute, without NUL; ``bpffs_root`` on a BPF filesystem, a
  directory (not a pin), not the mount point itself; ``state_dir`` a directory
  not on a virtual filesystem, neither a system directory (``/``, ``/etc``,
  ``/var/lib`` ...) nor writable by others, nor inside another pair's root;
* each root is absent, empty, ours (marked), a previous release's (our layout,
  no marker yet) or foreign (anything else): foreign is refused;
* marked roots must carry the same pair id (and the state_dir's marker must
  name this bpffs_root); a root of another pair is refused, naming both paths
  and what each belongs to;
* an unmarked bpffs_root that holds pins is adopted only when this state_dir's
  registry proves them: every pin path it records lies under this bpffs_root and
  at least one of them exists (an install from before the markers, or a run
  killed between writing the two markers);
* an absent or empty bpffs_root beside a marked or recorded state_dir is
  claimed again (after a reboot bpffs is empty; nothing there can be harmed).

claim_roots creates what is missing (mode 0700, only on the directories it
creates) and writes the markers, state_dir's first, so a run killed between the
two is adopted by the next one. It is idempotent and safe against a concurrent
claim (the state_dir marker is created with link(2), which never replaces).
Proving and marking roots that carry no marker yet is in roots_claim.py: every
run checks the roots, few claim them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import json
import os
import stat

try:
    from urllib.parse import unquote
except ImportError:  # pragma: no cover (python 2 is not supported on targets)
    from urllib import unquote

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError

MARKER_FILE = "pair.json"
MARKER_PREFIX = "pair-"
MARKER_VERSION = 1
BPFFS_MOUNT = "/sys/fs/bpf"
DEFAULTS = {"bpffs_root": "/sys/fs/bpf/ebpf-datapath", "state_dir": "/var/lib/ebpf-datapath"}

# What the collection keeps in its roots: an unmarked root holding only these
# names is ours from a release that had no markers yet.
STATE_NAMES = frozenset(("registry.json", "lock", "objects", "cache", MARKER_FILE))
BPFFS_NAMES = frozenset(("plugins", "dispatchers"))

# Directories that belong to the system, refused as roots even when empty.
SYSTEM_DIRS = frozenset((
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/lost+found",
    "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
    "/usr/bin", "/usr/include", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec", "/usr/local",
    "/usr/local/bin", "/usr/local/lib", "/usr/local/sbin", "/usr/local/share", "/usr/sbin", "/usr/share",
    "/usr/src", "/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log", "/var/mail",
    "/var/opt", "/var/run", "/var/spool", "/var/tmp", "/run/lock", "/dev/shm",
    "/sys/fs", "/sys/fs/bpf", "/sys/fs/bpf/tc", "/sys/fs/bpf/tc/globals", "/sys/fs/bpf/xdp", "/sys/fs/bpf/ip",
))
# Filesystems a state_dir must not be on: they hold no regular files of ours.
VIRTUAL_FS = frozenset(("bpf", "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
                        "securityfs", "configfs", "pstore", "efivarfs", "mqueue", "hugetlbfs", "fusectl"))

ABSENT, EMPTY, OURS, PREVIOUS, FOREIGN = "absent", "empty", "ours", "previous release", "foreign"


class RootsError(DatapathError):
    """bpffs_root or state_dir is not a pair of roots this collection may use."""


class Root:
    """What one root is: kind (ABSENT, EMPTY, OURS, PREVIOUS, FOREIGN), the pair id
    of its marker, the other root its marker names, whether it holds pins (bpffs)
    or a registry (state_dir), and its top-level names."""

    def __init__(self, option, path, kind, names=(), pair=None, partner=None, holds=False):
        self.option = option
        self.path = path
        self.kind = kind
        self.names = sorted(names)
        self.pair = pair
        self.partner = partner
        self.holds = holds

    def describe(self):
        if self.kind == ABSENT:
            return "does not exist yet"
        if self.kind == EMPTY:
            return "is empty"
        if self.kind == OURS:
            other = "bpffs_root" if self.option == "state_dir" else "state_dir"
            partner = (" with %s %s" % (other, self.partner)) if self.partner else ""
            return "belongs to ebpf.datapath pair %s%s" % (self.pair, partner)
        if self.kind == PREVIOUS:
            what = "pins" if self.option == "bpffs_root" else ("a registry" if self.holds else "no registry")
            return "holds %s of an ebpf.datapath install without an ownership marker" % what
        return "is not ebpf.datapath's (it holds %s)" % _names(self.names)


class Claim:
    """What check_roots found and what claim_roots must do: the pair id to keep
    (None: make a new one), and the two roots."""

    def __init__(self, bpffs, state, pair):
        self.bpffs = bpffs
        self.state = state
        self.pair = pair

    @property
    def settled(self):
        """Both roots carry this pair's marker: claiming writes nothing."""
        return self.state.kind == OURS and self.bpffs.kind == OURS


def _names(names, limit=6):
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (" and %d more" % (len(names) - limit) if len(names) > limit else "")


# ---------------------------------------------------------------- paths

def _check_path(option, value):
    if not value or "\0" in value:
        raise RootsError("%s %r is empty or contains a NUL character; give an absolute path" % (option, value))
    if not os.path.isabs(value):
        raise RootsError("%s %r is not an absolute path; give an absolute path such as %s"
                         % (option, value, DEFAULTS[option]))
    return os.path.normpath(value)


def resolved(path):
    """path with the symlinks of its existing part resolved; the part that does
    not exist yet is kept."""
    head, tail = path, ""
    while head != "/" and not os.path.lexists(head):
        head, part = os.path.split(head)
        tail = os.path.join(part, tail) if tail else part
    real = os.path.realpath(head)
    return os.path.join(real, tail) if tail else real


def mount_of(path, mounts_file="/proc/self/mounts"):
    """(fstype, mount point) of the mount that holds path, by the longest prefix."""
    best = ("unknown", "/")
    with open(mounts_file) as handle:
        for line in handle:
            fields = line.split()
            if len(fields) < 3:
                continue
            point = fields[1].replace("\\040", " ")
            if (path + "/").startswith(point.rstrip("/") + "/") and len(point) >= len(best[1]):
                best = (fields[2], point)
    return best


def _existing_ancestor(path):
    head = os.path.dirname(path)
    while head != "/" and not os.path.lexists(head):
        head = os.path.dirname(head)
    return head


def _pin_kind(path):
    """'a pinned map' / 'a pinned program' / 'a pinned link', from the kernel."""
    try:
        from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
        fd = libbpf.obj_get(path)
    except Exception:  # noqa: BLE001 (only a better message is at stake)
        return "a file"
    try:
        with open("/proc/self/fdinfo/%d" % fd) as handle:
            text = handle.read()
    except OSError:
        text = ""
    finally:
        libbpf.close_fd(fd)
    for key, kind in (("link_id:", "link"), ("prog_id:", "program"), ("map_id:", "map")):
        if key in text:
            return "a pinned BPF %s" % kind
    return "a pinned BPF object"


def _not_a_directory(option, path):
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        return None
    if option == "bpffs_root":
        return _pin_kind(path)
    return "a regular file" if stat.S_ISREG(st.st_mode) else "not a directory"


# ---------------------------------------------------------------- one root

def _state_marker(path):
    """(pair, bpffs_root) from <state_dir>/pair.json, or None when there is none."""
    marker = os.path.join(path, MARKER_FILE)
    if not os.path.lexists(marker):
        return None
    try:
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            raise ValueError("not a regular file")
        with open(marker, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
        pair = data["pair"]
        bpffs_root = data["bpffs_root"]
        if data.get("version") != MARKER_VERSION or not _valid_pair(pair) or not isinstance(bpffs_root, str):
            raise ValueError("unknown content")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RootsError("the ownership marker %s cannot be read (%s); it is written by ebpf.datapath and binds "
                         "this state_dir to its bpffs_root: put back the original, or see docs/security.md to "
                         "pair the roots again" % (marker, exc))
    return pair, bpffs_root


def _valid_pair(pair):
    return isinstance(pair, str) and len(pair) == 32 and all(c in "0123456789abcdef" for c in pair)


def bpffs_markers(path, names):
    """{pair id: state_dir it names or None} of the marker directories in bpffs_root."""
    found = {}
    for name in names:
        pair = name[len(MARKER_PREFIX):]
        if not name.startswith(MARKER_PREFIX) or not _valid_pair(pair):
            continue
        partner = None
        try:
            inner = os.listdir(os.path.join(path, name))
        except OSError:
            continue  # a pin named like a marker: not a marker
        for entry in inner:
            if entry.startswith("state_dir="):
                partner = unquote(entry[len("state_dir="):])
        found[pair] = partner
    return found


def _holds_pins(path):
    for _dirpath, _dirnames, filenames in os.walk(path):
        if filenames:
            return True
    return False


def _other_pair_above(path, is_bpffs):
    """The ancestor of path that is another pair's root, or None."""
    head = os.path.dirname(path)
    while head not in ("/", ""):
        try:
            names = os.listdir(head)
        except OSError:
            names = []
        if is_bpffs and bpffs_markers(head, names):
            return head
        if not is_bpffs and MARKER_FILE in names:
            return head
        head = os.path.dirname(head)
    return None


def _absent(kind, path, needs):
    """Root(kind, path, ABSENT) when nothing is at path, None when a directory
    is; anything else is refused, saying what kind needs (a %s for the default)."""
    if not os.path.lexists(path):
        _check_ancestor(kind, path)
        return Root(kind, path, ABSENT)
    what = _not_a_directory(kind, path)
    if what:
        raise RootsError("%s %s is %s, not a directory; %s" % (kind, path, what, needs % DEFAULTS[kind]))
    return None


def inspect_state_dir(path):
    """The Root of a state_dir (reads only)."""
    absent = _absent("state_dir", path, "give a directory such as %s")
    if absent:
        return absent
    st = os.stat(path)
    if st.st_uid != os.geteuid():
        raise RootsError("state_dir %s is owned by uid %d, not by the user running ebpf.datapath (uid %d): whoever "
                         "owns it can change what the kernel runs; chown it or choose another directory"
                         % (path, st.st_uid, os.geteuid()))
    if st.st_mode & 0o022:
        raise RootsError("state_dir %s is writable by group or others (mode %o): anyone who can write it can change "
                         "what the kernel runs; chmod go-w it or choose another directory"
                         % (path, stat.S_IMODE(st.st_mode)))
    names = os.listdir(path)
    marker = _state_marker(path)
    if marker is not None:
        return Root("state_dir", path, OURS, names, pair=marker[0], partner=marker[1],
                    holds="registry.json" in names)
    if not names:
        return Root("state_dir", path, EMPTY)
    if all(n in STATE_NAMES or n.startswith(".tmp-") for n in names):
        return Root("state_dir", path, PREVIOUS, names, holds="registry.json" in names)
    return Root("state_dir", path, FOREIGN, [n for n in names if n not in STATE_NAMES])


def inspect_bpffs_root(path):
    """The Root of a bpffs_root (reads only)."""
    absent = _absent("bpffs_root", path, "bpffs_root names the directory under which ebpf.datapath pins "
                     "everything (such as %s), not one of the pins")
    if absent:
        return absent
    names = os.listdir(path)
    markers = bpffs_markers(path, names)
    if len(markers) > 1:
        raise RootsError("bpffs_root %s carries the markers of %d pairs (%s): two state_dirs claimed it at once; "
                         "it belongs to the pair whose state_dir's pair.json names one of them; remove the "
                         "other marker directory" % (path, len(markers), ", ".join(sorted(markers))))
    if markers:
        pair, partner = list(markers.items())[0]
        return Root("bpffs_root", path, OURS, names, pair=pair, partner=partner, holds=_holds_pins(path))
    if not names:
        return Root("bpffs_root", path, EMPTY)
    if all(n in BPFFS_NAMES for n in names):
        if not _holds_pins(path):
            return Root("bpffs_root", path, EMPTY, names)  # our directories, nothing pinned below
        return Root("bpffs_root", path, PREVIOUS, names, holds=True)
    return Root("bpffs_root", path, FOREIGN, [n for n in names if n not in BPFFS_NAMES])


def _check_ancestor(option, path):
    head = _existing_ancestor(path)
    if not os.path.isdir(head):
        what = _pin_kind(head) if option == "bpffs_root" else "a file"
        raise RootsError("%s %s cannot be made: %s is %s, not a directory" % (option, path, head, what))


# ---------------------------------------------------------------- the pair

def mismatch(bpffs, state, why):
    """The error for two roots that are not one pair: what each is, and what to fix."""
    return RootsError("bpffs_root %s and state_dir %s are not a pair: bpffs_root %s; state_dir %s. %s"
                      % (bpffs.path, state.path, bpffs.describe(), state.describe(), why))


def check_roots(bpffs_root, state_dir, mounts_file="/proc/self/mounts"):
    """Refuse roots this run must not use; returns the Claim claim_roots carries out.

    Reads only: creates and changes nothing. Raises RootsError saying what to fix.
    """
    bpffs_path = _check_path("bpffs_root", bpffs_root)
    state_path = _check_path("state_dir", state_dir)
    real_bpffs = resolved(bpffs_path)
    fstype, mount_point = mount_of(real_bpffs, mounts_file)
    if fstype != "bpf" and not ((real_bpffs + "/").startswith(BPFFS_MOUNT + "/") and mount_point != BPFFS_MOUNT):
        # (/sys/fs/bpf not mounted yet is fine: the engine mounts bpffs there first.)
        raise RootsError("bpffs_root %s is not on a BPF filesystem (it is on %s, mounted at %s); pins can only be "
                         "made in bpffs: choose a path under %s" % (bpffs_root, fstype, mount_point, BPFFS_MOUNT))
    real_state = resolved(state_path)
    state_fs, state_mount = mount_of(real_state, mounts_file)
    if state_fs in VIRTUAL_FS:
        raise RootsError("state_dir %s is on a %s filesystem (mounted at %s), which cannot hold the registry's "
                         "files; choose a directory such as %s" % (state_dir, state_fs, state_mount,
                                                                   DEFAULTS["state_dir"]))
    for option, path, real in (("bpffs_root", bpffs_path, real_bpffs), ("state_dir", state_path, real_state)):
        if real in SYSTEM_DIRS or path in SYSTEM_DIRS:
            raise RootsError("%s %s is a system directory; ebpf.datapath needs a directory of its own there, "
                             "such as %s" % (option, path, DEFAULTS[option]))
    state = inspect_state_dir(state_path)
    bpffs = inspect_bpffs_root(bpffs_path)
    for option, path, is_bpffs in (("bpffs_root", bpffs_path, True), ("state_dir", state_path, False)):
        above = _other_pair_above(path, is_bpffs)
        if above:
            raise RootsError("%s %s is inside %s, the %s of another ebpf.datapath pair; choose a directory "
                             "outside it" % (option, path, above, option))
    for root in (state, bpffs):
        if root.kind == FOREIGN:
            raise RootsError("%s %s is not empty and is not ebpf.datapath's (no ownership marker; it holds %s); "
                             "give a new or empty directory, or the one ebpf.datapath made"
                             % (root.option, root.path, _names(root.names)))

    if state.kind == OURS and os.path.normpath(state.partner) != bpffs_path:
        raise mismatch(bpffs, state, "Give bpffs_root %s with this state_dir, or a new state_dir for this "
                                     "bpffs_root" % state.partner)
    if bpffs.kind == OURS:
        if state.kind != OURS:
            hint = ("state_dir %s was that pair's, but lost its marker %s (removed or replaced)"
                    % (state.path, MARKER_FILE) if bpffs.partner == state.path else
                    "If state_dir is mistyped, give %s" % (bpffs.partner or "the state_dir of that pair"))
            raise mismatch(bpffs, state, hint)
        if state.pair != bpffs.pair:
            raise mismatch(bpffs, state, "Give each bpffs_root with the state_dir it was first used with")
        return Claim(bpffs, state, state.pair)
    # bpffs_root unmarked: absent, empty, or pins of an install without markers.
    from ansible_collections.ebpf.datapath.plugins.module_utils.roots_claim import prove
    prove(bpffs, state, must_exist=bpffs.kind == PREVIOUS)
    return Claim(bpffs, state, state.pair if state.kind == OURS else None)


# ---------------------------------------------------------------- claiming

def claim_roots(bpffs_root, state_dir, mounts_file="/proc/self/mounts"):
    """Make the roots this pair's: check them, create what is missing (0700, only
    the directories made here) and write the markers, state_dir's first
    (roots_claim.py). Idempotent; returns the pair id."""
    claim = check_roots(bpffs_root, state_dir, mounts_file)
    if claim.settled:
        return claim.pair  # every run but a first one: nothing to write
    from ansible_collections.ebpf.datapath.plugins.module_utils import roots_claim
    return roots_claim.claim(claim, bpffs_root, state_dir, mounts_file)


def remove_marker(bpffs_root, pair):
    marker = os.path.join(bpffs_root, MARKER_PREFIX + pair)
    for entry in os.listdir(marker):
        os.rmdir(os.path.join(marker, entry))
    os.rmdir(marker)


def release_bpffs_root(bpffs_root):
    """Remove bpffs_root when nothing but our marker is left in it (call under the
    lock, after the last pin went). The state_dir keeps its marker: the next run
    claims an absent bpffs_root again. Returns True when it was removed."""
    path = os.path.normpath(bpffs_root)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        names = os.listdir(path)
        markers = bpffs_markers(path, names)
        if len(markers) != 1 or len(names) != 1:
            return False
        remove_marker(path, list(markers)[0])
        os.rmdir(path)
    except OSError:
        return False  # something was pinned meanwhile: keep it
    finally:
        os.close(fd)
    return True
