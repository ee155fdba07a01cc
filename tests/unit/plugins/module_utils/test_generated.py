# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""generated.py and dispatcher.generated_sources: what a host that compiles
nothing asks the controller for, and how it keeps what it gets. No root, no
clang: the objects here are plain bytes."""

import hashlib

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.generated import Builder, NeedsBuild, generated_key
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Plugin

TC = "struct __sk_buff *"


def plugin(name, functions=("count",)):
    sha = hashlib.sha256(name.encode()).hexdigest()
    funcs = dict((f, {"params": [TC], "ret": "int"}) for f in functions)
    return Plugin(name, {"src": "/src/%s.c" % name, "sha256": sha}, [], [], sha, sha, funcs, [],
                  dict((f, "dpp_%s__%s" % (name, f)) for f in functions), {})


PLUGINS = {"a": plugin("a"), "b": plugin("b")}


def inputs(mode, pre=(("a", "count"), ("b", "count"))):
    return {"kind": "tc", "pre": [list(p) for p in pre], "post": [], "main": None, "mode": mode}


def test_key_is_the_name_and_text():
    assert generated_key("dispatcher", "x") == generated_key("dispatcher.c", "x")
    assert generated_key("dispatcher", "x") != generated_key("trial", "x")
    assert generated_key("dispatcher", "x") != generated_key("dispatcher", "y")


def test_link_mode_needs_the_dispatcher_only():
    sources = dispatcher.generated_sources(inputs("link"), PLUGINS)
    assert [name for name, _text in sources] == ["dispatcher"]
    assert "dpp_a__count" in sources[0][1] and "dpp_b__count" in sources[0][1]


def test_freplace_mode_needs_the_dispatcher_and_each_plugins_wrappers():
    sources = dispatcher.generated_sources(inputs("freplace"), PLUGINS)
    assert [name for name, _text in sources] == ["dispatcher_freplace", "freplace_wrappers", "freplace_wrappers"]
    assert 'SEC("freplace/dp_pre_0")' in sources[1][1] and 'SEC("freplace/dp_pre_1")' in sources[2][1]


def test_a_host_that_does_not_compile_names_everything_missing_at_once(tmp_path):
    builder = Builder(str(tmp_path), run=None, compile_on_host=False)
    sources = dispatcher.generated_sources(inputs("freplace"), PLUGINS)
    with pytest.raises(NeedsBuild) as caught:
        builder.require(sources)
    asked = caught.value.result_extra()["needs_build"]
    assert [(a["name"], a["text"]) for a in asked] == sources
    assert all(a["key"] == generated_key(a["name"], a["text"]) for a in asked)
    assert "build_on: controller" in str(caught.value)


def test_shipped_objects_are_kept_and_then_found(tmp_path):
    builder = Builder(str(tmp_path / "cache"), run=None, compile_on_host=False)
    text = dispatcher.generated_sources(inputs("link"), PLUGINS)[0][1]
    shipped = tmp_path / "shipped.o"
    shipped.write_bytes(b"\x7fELF not really")
    digest = hashlib.sha256(shipped.read_bytes()).hexdigest()
    builder.accept([{"key": generated_key("dispatcher", text), "path": str(shipped), "sha256": digest}])
    builder.require([("dispatcher", text)])  # nothing missing now
    found = builder.compile_source_text(text, "dispatcher")
    assert found.sha256 == digest and found.cached
    with open(found.object_path, "rb") as handle:
        assert handle.read() == shipped.read_bytes()
    # Another text is still missing, and says so when compiled.
    with pytest.raises(NeedsBuild):
        builder.compile_source_text(text + "\n", "dispatcher")


@pytest.mark.parametrize("item,message", [
    ({"key": "nothex", "path": "x", "sha256": "0" * 64}, "is not a sha256"),
    ({"key": "a" * 64, "path": "/nonexistent/x.o", "sha256": "0" * 64}, "cannot be read"),
    ({"key": "a" * 64, "path": "SHIPPED", "sha256": "0" * 64}, "refusing it"),
])
def test_a_shipped_object_that_does_not_check_out_is_refused(tmp_path, item, message):
    shipped = tmp_path / "shipped.o"
    shipped.write_bytes(b"object")
    if item["path"] == "SHIPPED":
        item = dict(item, path=str(shipped))
    builder = Builder(str(tmp_path / "cache"), run=None, compile_on_host=False)
    with pytest.raises(DatapathError, match=message):
        builder.accept([item])
    assert not (tmp_path / "cache" / "generated").exists() or not list((tmp_path / "cache" / "generated").iterdir())


def test_a_host_that_does_not_compile_never_makes_a_toolchain(tmp_path):
    builder = Builder(str(tmp_path), run=None, compile_on_host=False)
    assert not builder.has_clang
    with pytest.raises(DatapathError, match="compiles nothing"):
        builder.compile("/src/a.c")
