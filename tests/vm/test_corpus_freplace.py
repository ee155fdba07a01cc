# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The corpus (tests/corpus/) in freplace mode, in Debian's stock kernel.

Each program, unmodified, is the main of a dispatcher at clsact ingress or
XDP with counter.c's pre hook and verdicts.c's post hook, mode freplace: its
own SEC("tc") / SEC("xdp") program is loaded as the extension of the
dispatcher's main stub. Real datagrams prove all three ran: the pre hook
counted every one, the program's own maps show it decided, the post hook
counted the program's own verdicts, and the denied port's datagrams are gone.

The CO-RE classifier is compiled against a vmlinux.h generated here from this
kernel's BTF (/sys/kernel/btf/vmlinux) at test time. The host tier
(tests/integration/test_real_programs_corpus.py) generates the same header
from this kernel's image and builds every object these tests load, so
nothing is compiled under emulation (corpus_cases.py says why the header's
path is fixed).
"""

import os
import secrets

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine
from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

import corpus_cases as cases

from lab import Lab, remove_tree
from modhost import DROP_PORT, OPEN_PORT, place, udp_burst

BPFFS = "/sys/fs/bpf"


@pytest.fixture(scope="module")
def vmlinux():
    """vmlinux.h of the running kernel, at the fixed path the host tier used.
    A header the host generated for this release must be this very one, or the
    VM would compile what the host built (slowly) and the host's extraction
    is wrong."""
    release = os.uname().release
    path = os.path.join(cases.vmlinux_dir(release), "vmlinux.h")
    predicted = None
    if os.path.exists(path):
        with open(path, "rb") as handle:
            predicted = handle.read()
    out = cases.write_vmlinux_h("/sys/kernel/btf/vmlinux", release)
    with open(path, "rb") as handle:
        generated = handle.read()
    assert predicted in (None, generated), "the host generated another vmlinux.h for %s than this kernel's BTF" % (
        release,)
    return out


def _top_pins():
    return set(os.listdir(BPFFS))


class CorpusVm:
    """One lab, bpffs_root and state_dir for all the corpus programs: the hook
    plugins are installed once (each install costs seconds under emulation);
    every test installs its program, builds its chain, and removes both."""

    def __init__(self, lab, bpffs_root, state_dir):
        self.lab, self.bpffs_root, self.state_dir = lab, bpffs_root, state_dir

    def engine(self):
        return Engine(self.bpffs_root, self.state_dir, run=run_subprocess)

    def counter(self, plugin, mapname="counts", key=0):
        return read_pinned(os.path.join(self.bpffs_root, "plugins", plugin, "maps", mapname)).get(key, 0)


@pytest.fixture(scope="module")
def corpus_vm(tmp_path_factory):
    lab = Lab()
    root = os.path.join(BPFFS, "dpt-" + secrets.token_hex(4))
    try:
        lab.setup()
        lab.quiet()  # counters are compared around each burst: no stray packets
        os.mkdir(root, 0o700)
        host = CorpusVm(lab, root, str(tmp_path_factory.mktemp("corpus-state")))
        with host.engine() as eng:
            for name, src in cases.HOOK_PLUGINS:
                eng.ensure_plugin(name, src=os.path.join(cases.TESTDATA, src))
        yield host
    finally:
        lab.close()
        remove_tree(root)


@pytest.mark.parametrize("case", cases.CASES, ids=[c.plugin for c in cases.CASES])
def test_corpus_program_as_main_in_freplace_mode(corpus_vm, vmlinux, case):
    """The program as main between a pre and a post hook, mode freplace: one
    burst, then the rerun changes nothing; removal leaves nothing behind."""
    vm, lab = corpus_vm, corpus_vm.lab
    outside = _top_pins() - {os.path.basename(vm.bpffs_root)}
    spec = dict(name="corpus", attach=case.attach, mode="freplace", tc_backend="clsact",
                main=cases.main_ref(case), position=None, strict_constraints=False, keep_generations=3,
                hooks=cases.hooks(case.attach), **place(lab, "b"))
    try:
        with vm.engine() as eng:
            eng.ensure_plugin(case.plugin, src=os.path.join(cases.CORPUS, case.src),
                              include_dirs=cases.include_dirs(case, vmlinux))
            applied = eng.ensure_dispatcher(spec)
        assert applied["changed"] and applied["mode"] == "freplace"
        ext_dir = os.path.join(vm.bpffs_root, "dispatchers", "corpus", "gen-%d" % applied["generation"], "ext")
        assert sorted(os.listdir(ext_dir)) == ["dp_main", "dp_post_0", "dp_pre_0"]

        drop, ok = cases.verdicts(case.attach)
        names = (("counter", "counts", 0), ("verdicts", "seen", drop), ("verdicts", "seen", ok))
        before = [vm.counter(*n) for n in names]
        received = (udp_burst(lab, DROP_PORT, cases.DROPPED), udp_burst(lab, OPEN_PORT, cases.PASSED))
        seen = tuple(vm.counter(*n) - b for n, b in zip(names, before))
        assert (received, seen, cases.own_counts(vm.bpffs_root, case)) == cases.expected(case)
        with vm.engine() as eng:
            assert eng.ensure_dispatcher(spec)["changed"] is False
    finally:
        with vm.engine() as eng:
            eng.remove_dispatcher("corpus")
            eng.remove_plugin(case.plugin, force=True)
    assert not os.path.exists(os.path.join(vm.bpffs_root, "plugins", case.plugin))
    assert udp_burst(lab, DROP_PORT, 2) == 2, "nothing of the chain is left at the attach point"
    assert _top_pins() - {os.path.basename(vm.bpffs_root)} == outside, "every pin stays under bpffs_root"
