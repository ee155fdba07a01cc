# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of inline_build.py, no root, no compiler: which plugins may
be inlined, which symbols are, the one cpu of a chain, the renames of a
plugin's bitcode, and the ELF reading the tests and the license check use.
The build itself (clang, LLVM, the kernel) is tests/integration/test_inline_objects.py."""

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import inline_build
from ansible_collections.ebpf.datapath.plugins.module_utils.inline_build import InlineError
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Chain, FunctionRef, Plugin


def plugin(name, functions=("count",), src=True, cflags=(), entries=None, link_entries=()):
    if src:
        source = {"src": "/srv/%s.c" % name, "sha256": "0" * 64}
    else:
        source = {"object": "/srv/%s.o" % name, "sha256": "0" * 64}
    symbols = dict((f, "dpp_%s__%s" % (name, f) if src else f) for f in functions)
    return Plugin(name=name, source=source, cflags=list(cflags), include_dirs=[], plain_sha256="1" * 64,
                  link_sha256="2" * 64, functions=dict((f, {"params": ["struct __sk_buff *"], "ret": "int"})
                                                       for f in functions),
                  maps=[], link_symbols=symbols, link_maps={}, entries=entries or {}, link_entries=link_entries)


# -- which plugins ------------------------------------------------------------

def test_source_plugins_pass():
    inline_build.check_sources({"a": plugin("a"), "b": plugin("b")}, ["a", "b"])


def test_an_object_only_plugin_is_refused_by_name_with_the_way_out():
    plugins = {"a": plugin("a"), "blob": plugin("blob", src=False)}
    with pytest.raises(InlineError) as caught:
        inline_build.check_sources(plugins, ["a", "blob"])
    message = str(caught.value)
    assert "'blob' (object /srv/blob.o) was installed from a prebuilt object only" in message
    assert "install it with src, or use mode: link" in message
    assert "'a'" not in message


def test_every_object_only_plugin_is_named_at_once():
    plugins = {"x": plugin("x", src=False), "y": plugin("y", src=False)}
    with pytest.raises(InlineError) as caught:
        inline_build.check_sources(plugins, ["x", "y"])
    assert "'x'" in str(caught.value) and "'y'" in str(caught.value) and "were installed" in str(caught.value)


# -- which symbols ------------------------------------------------------------

def test_inline_symbols_are_every_hooked_function_and_main_once():
    plugins = {"a": plugin("a", ("count", "note")), "b": plugin("b", ("check", "pick"))}
    chain = Chain(pre=[("a", "count"), ("b", "check"), ("a", "count")], post=[("a", "note")])
    assert inline_build.inline_symbols(chain, FunctionRef("b", "pick"), plugins) == [
        "dpp_a__count", "dpp_a__note", "dpp_b__check", "dpp_b__pick"]
    assert inline_build.inline_symbols(Chain(), None, plugins) == []


# -- one cpu per chain -----------------------------------------------------------

@pytest.mark.parametrize("cflags, cpu", [
    ((), "v3"),
    (("-O2", "-mcpu=v2"), "v2"),
    (("-mcpu=v4", "-DX=1", "-mcpu=v1"), "v1"),  # the last one wins, as in clang
])
def test_cpu_of_a_compile_is_its_last_mcpu_flag(cflags, cpu):
    assert inline_build.cpu_of(cflags) == cpu


def test_a_chain_of_plugins_agreeing_on_the_cpu_uses_it():
    plugins = {"a": plugin("a", cflags=["-mcpu=v2"]), "b": plugin("b", cflags=["-mcpu=v2"])}
    assert inline_build.chain_cpu(plugins, ["a", "b"]) == "v2"
    assert inline_build.chain_cpu({"a": plugin("a")}, ["a"]) == "v3"
    assert inline_build.chain_cpu({}, []) == "v3"


def test_plugins_compiled_for_different_cpus_are_refused_naming_each():
    plugins = {"a": plugin("a", cflags=["-mcpu=v2"]), "b": plugin("b")}
    with pytest.raises(InlineError) as caught:
        inline_build.chain_cpu(plugins, ["a", "b"])
    assert "'a' v2, 'b' v3" in str(caught.value) and "mode: link" in str(caught.value)


# -- the renames of a plugin's bitcode ----------------------------------------------

def test_bitcode_renames_every_global_the_license_and_moves_entry_programs():
    info = {"globals": ["count", "counts", "tc_main"],
            "functions": {"count": {"ret": "int"}, "tc_main": {"ret": "int"}}}
    defines = inline_build.bitcode_defines("p", info, ["LICENSE"], ["tc_main"])
    assert defines["count"] == "dpp_p__count"
    assert defines["counts"] == "dpp_p__counts"
    assert defines["LICENSE"] == "dpp_p__LICENSE"
    # The entry program becomes a .text function named as in the namespaced object.
    assert defines["tc_main"].endswith('__attribute__((section(".text"))) dpp_p__tc_main')
    assert sorted(defines) == ["LICENSE", "count", "counts", "tc_main"]
