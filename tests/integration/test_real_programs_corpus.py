# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The corpus (tests/corpus/, see its README): programs written the way public
projects write them run unmodified as a dispatcher's main, with a pre and a
post hook, link mode, on this kernel, with real packets. For each, the pre
hook's counter proves the pre hook ran, the program's own map proves main ran
and decided, and the post hook's per-verdict counts prove the post hook ran
with main's own verdicts.

freplace mode runs in the VM tier (tests/vm/test_corpus_freplace.py); the last
test here builds every object it loads, so the VM finds them in the compile
cache instead of running clang under emulation."""

import importlib.util
import os
import struct
import subprocess

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import chain as chain_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object
from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine
from ansible_collections.ebpf.datapath.plugins.module_utils.maps import read_pinned
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import program_family
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

from modhost import DROP_PORT, OPEN_PORT, Host, place, udp_burst

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(TESTS, "corpus")


def _load_cases():
    """tests/vm/corpus_cases.py: the corpus as chains, shared with the VM tier."""
    spec = importlib.util.spec_from_file_location("corpus_cases", os.path.join(TESTS, "vm", "corpus_cases.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cases = _load_cases()
BPFFS = "/sys/fs/bpf"


@pytest.fixture
def host(lab, bpffs_root, state_dir):
    lab.quiet()
    h = Host(lab, bpffs_root, state_dir)
    h.plugin("counter", "counter.c")
    h.plugin("verdicts", "verdicts.c")
    return h


@pytest.fixture(scope="module")
def vmlinux_dir(tmp_path_factory):
    """A directory holding vmlinux.h generated from the running kernel's BTF."""
    out = tmp_path_factory.mktemp("vmlinux")
    proc = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"],
                          capture_output=True, check=True, timeout=120)
    (out / "vmlinux.h").write_bytes(proc.stdout)
    return str(out)


def pins_outside_test_roots():
    """The pins at the top of /sys/fs/bpf, where libbpf pins a map declared
    LIBBPF_PIN_BY_NAME when no pin directory is given. Directories are left
    out: every test run and benchmark on this machine makes its own root
    there, and they come and go while a test runs."""
    return set(n for n in os.listdir(BPFFS) if not os.path.isdir(os.path.join(BPFFS, n)))


def run_as_main(host, lab, plugin, function, attach):
    xdp = attach == "xdp"
    args = dict(name="corpus", attach=attach, mode="link", **place(lab, "b"),
                main={"plugin": plugin, "function": function},
                plugins=[{"plugin": "counter", "function": "count_xdp" if xdp else "count"},
                         {"plugin": "verdicts", "function": "record_xdp" if xdp else "record", "hook": "post"}])
    if not xdp:
        args["tc_backend"] = "tcx"
    result = host.run("dispatcher", **args)
    assert result["changed"] is True
    received = (udp_burst(lab, DROP_PORT, 4), udp_burst(lab, OPEN_PORT, 3))
    drop, ok = (1, 2) if xdp else (2, 0)  # XDP_DROP / XDP_PASS, TC_ACT_SHOT / TC_ACT_OK
    seen = (host.counter("counter"), host.counter("verdicts", "seen", drop), host.counter("verdicts", "seen", ok))
    assert host.run("dispatcher", **args)["changed"] is False
    host.run("dispatcher", name="corpus", state="absent")
    return received, seen


def test_core_tc_classifier_installs_and_is_verified(host, vmlinux_dir):
    """Compiled against the generated vmlinux.h (CO-RE relocations), its entry
    program verified at install under its own "Dual BSD/GPL" license."""
    installed = host.run("datapath_plugin", name="cls", src=os.path.join(CORPUS, "tc_core", "classifier.c"),
                         include_dirs=[vmlinux_dir])
    assert "classify_udp" in installed["plugin"]["functions"]
    assert installed["plugin"]["maps"] == {"verdict_counts": os.path.join(host.bpffs_root, "plugins", "cls", "maps",
                                                                          "verdict_counts")}


def test_core_tc_classifier_as_main(host, lab, vmlinux_dir):
    """Its "Dual BSD/GPL" license links beside the hooks' "GPL" (plugin_store.gpl_license_copy)."""
    host.run("datapath_plugin", name="cls", src=os.path.join(CORPUS, "tc_core", "classifier.c"),
             include_dirs=[vmlinux_dir])
    received, seen = run_as_main(host, lab, "cls", "classify_udp", "tc_ingress")
    assert received == (0, 3), "main (the classifier) drops port 7777 and passes the rest"
    assert seen == (7, 4, 3), "pre hook saw every packet; post hook saw main's 4 TC_ACT_SHOT and 3 TC_ACT_OK"
    assert host.counter("cls", "verdict_counts", 2) == 4 and host.counter("cls", "verdict_counts", 0) == 3


def _stats(host, plugin, action):
    """rx_packets of struct datarec {__u64 rx_packets, rx_bytes} for one XDP action."""
    value = read_pinned(os.path.join(host.bpffs_root, "plugins", plugin, "maps", "xdp_stats_map")).get(action)
    return struct.unpack("<QQ", bytes.fromhex(value))[0] if value else 0


def test_xdp_programs_sharing_a_header_and_a_pin_by_name_map(host, lab):
    outside = pins_outside_test_roots()
    for name, src in (("filter", "xdp_port_filter.c"), ("passall", "xdp_pass_all.c")):
        host.run("datapath_plugin", name=name, src=os.path.join(CORPUS, "xdp_shared", src))
    assert pins_outside_test_roots() == outside

    received, seen = run_as_main(host, lab, "filter", "xdp_port_filter_func", "xdp")
    assert received == (0, 3)
    assert seen == (7, 4, 3), "pre hook saw every packet; post hook saw main's 4 XDP_DROP and 3 XDP_PASS"
    assert (_stats(host, "filter", 1), _stats(host, "filter", 2)) == (4, 3), "main's own pinned stats"

    received, seen = run_as_main(host, lab, "passall", "xdp_pass_func", "xdp")
    assert received == (4, 3)
    assert seen == (14, 4, 10)
    assert _stats(host, "passall", 2) == 7
    # Pinned by name, the map is per plugin: the filter's stats did not move.
    assert _stats(host, "filter", 2) == 3
    assert pins_outside_test_roots() == outside


def run_case(host, lab, case, plugins=None):
    """One corpus case as main, link mode: (received, seen, own) of one burst, as
    corpus_cases.expected() words them. The rerun changes nothing."""
    args = dict(name="corpus", attach=case.attach, mode="link", **place(lab, "b"),
                main=cases.main_ref(case), plugins=plugins or cases.hooks(case.attach))
    if case.attach != "xdp":
        args["tc_backend"] = "tcx"
    assert host.run("dispatcher", **args)["changed"] is True
    drop, ok = cases.verdicts(case.attach)
    received = (udp_burst(lab, DROP_PORT, cases.DROPPED), udp_burst(lab, OPEN_PORT, cases.PASSED))
    seen = (host.counter("counter"), host.counter("verdicts", "seen", drop), host.counter("verdicts", "seen", ok))
    assert host.run("dispatcher", **args)["changed"] is False
    return received, seen, cases.own_counts(host.bpffs_root, case)


def test_cilium_style_macro_layer_as_main(host, lab):
    """A program written against a Cilium-like macro layer (tests/corpus/cilium_style:
    __section_entry, struct __ctx_buff, helpers declared by the layer rather than
    libbpf's, a map macro with pinning by name, a setting in .rodata.config)
    drops its denied port as main; both hooks ran; its pinned metrics map counted."""
    case = cases.BY_PLUGIN["cil"]
    outside = pins_outside_test_roots()
    installed = host.run("datapath_plugin", name=case.plugin, src=os.path.join(CORPUS, case.src),
                         include_dirs=cases.include_dirs(case, None))
    assert case.main in installed["plugin"]["functions"]
    assert installed["plugin"]["maps"]["node_metrics"] == os.path.join(host.bpffs_root, "plugins", "cil", "maps",
                                                                       "node_metrics")
    assert run_case(host, lab, case) == cases.expected(case)
    host.run("dispatcher", name="corpus", state="absent")
    host.run("datapath_plugin", name=case.plugin, state="absent")
    assert pins_outside_test_roots() == outside, "the pinned-by-name metrics map stays under bpffs_root"


def test_prog_array_with_tail_calls_as_main(host, lab):
    """tests/corpus/tail_calls: the entry program tail-calls through a prog array
    initialised in its declaration (.values) into stages under their own
    SEC("tc"). As main: the deny stage's own counter and its TC_ACT_SHOT (the
    post hook sees it, the packets are gone) prove the tail-called program ran,
    and no packet fell through an empty slot. A rebuild of the chain keeps the
    targets and their prog array."""
    case = cases.BY_PLUGIN["stages"]
    outside = pins_outside_test_roots()
    installed = host.run("datapath_plugin", name=case.plugin, src=os.path.join(CORPUS, case.src))
    plugin_dir = os.path.join(host.bpffs_root, "plugins", case.plugin) + os.sep
    assert installed["plugin"]["maps"]["stages"].startswith(plugin_dir), "the prog array is pinned under the plugin"
    assert run_case(host, lab, case) == cases.expected(case)

    # A new generation (post hook taken out): the stages still run from the same prog array.
    hits = cases.own_counts(host.bpffs_root, case)
    pre_only = [h for h in cases.hooks(case.attach) if h["hook"] == "pre"]
    received, _seen, own = run_case(host, lab, case, plugins=pre_only)
    assert received == (0, cases.PASSED)
    assert own == {"deny_stage": hits["deny_stage"] + cases.DROPPED,
                   "accept_stage": hits["accept_stage"] + cases.PASSED, "no_tail_call": 0}
    host.run("dispatcher", name="corpus", state="absent")
    host.run("datapath_plugin", name=case.plugin, state="absent")
    assert pins_outside_test_roots() == outside


def test_freplace_objects_of_the_corpus_for_the_vm(bpffs_root, state_dir):
    """Every object tests/vm/test_corpus_freplace.py loads, built here: the
    plugins (the CO-RE classifier against the vmlinux.h of the VM's kernel,
    generated from the .BTF section of its image in /boot), their verification
    programs, and each chain's stub dispatcher and extensions. This kernel
    refuses EXT programs, but clang and the static linker run; the VM then
    finds all of it in the compile cache. Also proves what freplace mode will
    load: one stub per hook and main, the entry program itself as main's
    extension, no wrapper for it."""
    vmlinux = cases.stock_kernel_vmlinux_dir()
    with Engine(bpffs_root, state_dir, run=run_subprocess) as eng:
        for case in cases.CASES:
            cases.install(eng, case, vmlinux)
        plugins = eng.registry.plugins
        for case in cases.CASES:
            solved = chain_mod.solve_dispatcher(cases.hooks(case.attach))
            dispatcher_obj, extensions = disp_mod.prepare_freplace(
                eng.toolchain, eng.layout, program_family(case.attach), solved, cases.main_ref(case), plugins)
            with bpf_btf.Btf.from_elf(dispatcher_obj) as btf:
                stubs = sorted(f.name for f in btf.functions() if f.name.startswith(("dp_main", "dp_pre_", "dp_post_")))
            assert stubs == ["dp_main", "dp_post_0", "dp_pre_0"], case.plugin
            main_ext = [e for e in extensions if e[0].name == case.plugin]
            assert len(main_ext) == 1, case.plugin
            with bpf_object.BpfObject.open_file(main_ext[0][2]) as obj:
                names = [p.name for p in obj.programs()]
            assert case.main in names and not any(n.startswith("dp_ext_") for n in names), (case.plugin, names)
