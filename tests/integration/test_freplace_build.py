# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""freplace mode's objects build on any host, whatever its kernel accepts.

This kernel refuses BPF_PROG_TYPE_EXT, so it cannot load them (the VM tier
does); here we prove the generated stub dispatcher and each plugin's extension
object are what the kernel will be asked to load: one global stub per hooked
function, one EXT program per stub, named after it, linked with the plugin's
own maps. Building them also fills the shared compile cache the VM tier uses.
"""

import os

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import chain as chain_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object
from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import program_family

import freplace_cases as cases

BPF_PROG_TYPE_EXT = 28


@pytest.fixture
def engine(bpffs_root, state_dir):
    with Engine(bpffs_root, state_dir, run=run_subprocess) as eng:
        cases.install(eng)
        cases.install(eng, cases.SIXTY_FOUR)
        yield eng


def test_freplace_objects_of_every_vm_chain(engine):
    plugins = engine.registry.plugins
    for attach, hooks in cases.all_chains():
        solved = chain_mod.solve_dispatcher(hooks)
        kind = program_family(attach)
        dispatcher_obj, extensions = disp_mod.prepare_freplace(engine.toolchain, engine.layout, kind, solved,
                                                               None, plugins)
        with bpf_btf.Btf.from_elf(dispatcher_obj) as btf:
            stubs = sorted(f.name for f in btf.functions() if f.name.startswith("dp_p"))
        assert stubs == sorted(["dp_pre_%d" % i for i in range(len(solved["pre"]))] +
                               ["dp_post_%d" % i for i in range(len(solved["post"]))])
        seen = []
        for record, bindings, ext_obj in extensions:
            with bpf_object.BpfObject.open_file(ext_obj) as obj:
                ext = dict((p.name, p) for p in obj.programs() if p.type == BPF_PROG_TYPE_EXT)
                assert sorted(ext) == sorted("dp_ext_" + b[2][3:] for b in bindings)
                for name, prog in ext.items():
                    assert prog.section == "freplace/dp_" + name[len("dp_ext_"):]
                assert sorted(m.name for m in obj.maps() if not m.is_internal) == sorted(record.maps)
            seen += [b[2] for b in bindings]
        assert sorted(seen) == stubs
        # The VM tier compares each chain with link mode too: build that as well.
        linked, used = disp_mod.prepare_link(engine.toolchain, engine.layout, kind, solved, None, plugins)
        with bpf_object.BpfObject.open_file(linked) as obj:
            assert [p.name for p in obj.programs()] == [disp_mod.DISPATCHER_FUNC]
        assert used == sorted(set(h["plugin"] for h in hooks))


def test_inline_objects_of_the_vm_chains(engine):
    """The VM tier runs its core chains inline too (tests/vm/test_freplace.py):
    build (and cache) the same inline objects here, and prove each has no
    hooked function left."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import inline_build
    plugins = engine.registry.plugins
    for attach in cases.KINDS:
        for hooks in (cases.hooks(attach), cases.hooks(attach, twin_after_dropper=False)):
            solved = chain_mod.solve_dispatcher(hooks)
            built = inline_build.prepare_inline(engine.toolchain, engine.layout, program_family(attach), solved,
                                                None, plugins)
            assert built.calls_left == [] and built.used == ["counter", "dropper", "twin", "verdicts"]


def test_freplace_objects_of_the_entry_program_chains(engine):
    """Entry programs need no wrapper: the plugin's own SEC("tc") / SEC("xdp")
    program becomes the extension of a context-only stub. Builds (and caches)
    exactly what the VM tier loads."""
    plugins = engine.registry.plugins
    for attach, main, hooks in cases.entry_chains():
        solved = chain_mod.solve_dispatcher(hooks)
        kind = program_family(attach)
        dispatcher_obj, extensions = disp_mod.prepare_freplace(engine.toolchain, engine.layout, kind, solved,
                                                               main, plugins)
        with bpf_btf.Btf.from_elf(dispatcher_obj) as btf:
            stubs = dict((f.name, f.params) for f in btf.functions() if f.name.startswith("dp_"))
        assert len(stubs["dp_main"]) == 1
        for (plugin, function), stub in zip(solved["post"], ["dp_post_%d" % i for i in range(len(solved["post"]))]):
            assert len(stubs[stub]) == (1 if function in plugins[plugin].entries else 2), stub
        entry = [e for e in extensions if e[0].name == "entry"][0]
        with bpf_object.BpfObject.open_file(entry[2]) as obj:
            names = [p.name for p in obj.programs()]
        assert main["function"] in names and not any(n.startswith("dp_ext_") for n in names)
        linked, _used = disp_mod.prepare_link(engine.toolchain, engine.layout, kind, solved, main, plugins)
        with bpf_object.BpfObject.open_file(linked) as obj:
            assert [p.name for p in obj.programs()] == [disp_mod.DISPATCHER_FUNC]


def test_freplace_objects_of_the_features_chain(engine):
    """Settings, tail calls and statistics (tests/vm/test_features_freplace.py):
    the stub dispatcher counts, and the tail-calling plugin's extension object
    keeps its stages as programs beside the entry program it loads as the
    extension. Builds (and caches) what the VM tier loads."""
    cases.install_features(engine)
    plugins = engine.registry.plugins
    assert plugins["tails"].prog_arrays == ["stages"]
    assert plugins["cfg_b"].config_data == {"match_port": "b822", "data_step": "05000000"}
    attach, main, hooks = cases.feature_chain()
    solved = chain_mod.solve_dispatcher(hooks)
    dispatcher_obj, extensions = disp_mod.prepare_freplace(engine.toolchain, engine.layout, program_family(attach),
                                                           solved, main, plugins, stats=True)
    with bpf_object.BpfObject.open_file(dispatcher_obj) as obj:
        assert [m.name for m in obj.maps() if not m.is_internal] == ["dp_stats"]
    tails = [e for e in extensions if e[0].name == "tails"][0]
    with bpf_object.BpfObject.open_file(tails[2]) as obj:
        assert sorted(p.name for p in obj.programs()) == ["stage_drop", "stage_pass", "tc_stages"]
    prepared = disp_mod.prepare_link(engine.toolchain, engine.layout, program_family(attach), solved, main, plugins,
                                     stats=True)
    assert prepared[1] == ["cfg_a", "cfg_b", "parsed", "tails", "verdicts"]
    with bpf_btf.Btf.from_elf(dispatcher_obj) as btf:
        stubs = dict((f.name, f.params) for f in btf.functions() if f.name.startswith("dp_p"))
    # The stubs of parsed.c's functions take the parse (ebpf_datapath.h's struct dp_pkt).
    assert stubs["dp_pre_2"] == [("ctx", "struct __sk_buff *"), ("pkt", "const struct dp_pkt *")]
    assert stubs["dp_post_1"][1] == ("pkt", "const struct dp_pkt *")


def test_freplace_objects_of_the_marks_chain(engine):
    """tests/vm/test_features_freplace.py rolls back a chain whose tail-call
    target reads a setting: the main's extension object keeps the stage as a
    program (it fills the prog array of each build). Builds (and caches) what
    the VM tier loads."""
    name, src = cases.MARKS_PLUGIN
    engine.ensure_plugin(name, src=os.path.join(cases.TESTDATA, src), config={"mark": 1})
    plugins = engine.registry.plugins
    assert plugins[name].prog_arrays == ["stage"]
    attach, main, hooks = cases.marks_chain()
    _dispatcher_obj, extensions = disp_mod.prepare_freplace(engine.toolchain, engine.layout, program_family(attach),
                                                            chain_mod.solve_dispatcher(hooks), main, plugins)
    with bpf_object.BpfObject.open_file(extensions[0][2]) as obj:
        assert sorted(p.name for p in obj.programs()) == ["stage_mark", "tc_jump"]


def test_freplace_is_refused_here_with_the_way_out(engine, lab):
    """On this kernel mode freplace fails before touching anything, and says link works."""
    from ansible_collections.ebpf.datapath.plugins.module_utils import probe
    from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
    assert not probe.has_freplace()
    spec = dict(name="fr", attach="tc_ingress", interface=lab.if_b, netns=lab.ns_b, mode="freplace",
                tc_backend="auto", main=None, position=None, strict_constraints=False, keep_generations=3,
                hooks=cases.hooks("tc_ingress"))
    with pytest.raises(DatapathError) as caught:
        engine.ensure_dispatcher(spec)
    assert "refuses" in str(caught.value) and "mode: link" in str(caught.value)
    assert "fr" not in engine.registry.dispatchers
