# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names that become bpffs paths or C symbols."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ebpf.datapath.plugins.module_utils.naming import (
    InvalidName,
    check_name,
    plugin_symbol,
    safe_join,
    split_symbol,
)

GOOD = [
    ("dispatcher", "eth0-ingress"),
    ("dispatcher", "veth.42_egress"),
    ("dispatcher", "0"),
    ("dispatcher", "a-b.c_d"),
    ("dispatcher", "x" * 64),
    ("plugin", "bytecount"),
    ("plugin", "_private"),
    ("plugin", "acl_v4"),
    ("plugin", "A1"),
    ("plugin", "p" * 64),
    ("function", "count_bytes"),
    ("function", "__hidden"),
    ("function", "f" * 128),
    ("function", "ends_"),
    ("function", "a__b"),
    ("map", "counts"),
    ("map", "m" * 128),
    ("path component", "link-3"),
    ("path component", "gen-12"),
]

# (kind, name, what the message must say)
BAD = [
    ("dispatcher", "", "it is empty"),
    ("dispatcher", "a/b", "contains '/'"),
    ("dispatcher", "/", "contains '/'"),
    ("dispatcher", "..", "contains '..'"),
    ("dispatcher", "a..b", "contains '..'"),
    ("dispatcher", "a\0b", "contains a NUL character"),
    ("dispatcher", ".hidden", "starts with '.'"),
    ("dispatcher", ".", "starts with '.'"),
    ("dispatcher", "-rf", "starts with '-'"),
    ("dispatcher", "eth0 ingress", "contains whitespace (' ')"),
    ("dispatcher", "eth0\tin", "contains whitespace ('\\t')"),
    ("dispatcher", "eth0\n", "contains whitespace ('\\n')"),
    ("dispatcher", "caf\u00e9", "non-ASCII character '\u00e9'"),
    ("dispatcher", "x" * 65, "is 65 characters long"),
    ("dispatcher", "a:b", "contains ':'"),
    ("dispatcher", "a\x01b", "contains '\\x01'"),
    ("dispatcher", "a*", "contains '*'"),
    ("plugin", "1st", "starts with a digit"),
    ("plugin", "byte-count", "contains '-'"),
    ("plugin", "byte.count", "contains '.'"),
    ("plugin", "a__b", "contains '__'"),
    ("plugin", "trailing_", "ends in '_'"),
    ("plugin", "p" * 65, "is 65 characters long"),
    ("plugin", "../etc", "contains '/'"),
    ("plugin", "\u0430cl", "non-ASCII"),  # Cyrillic a
    ("function", "", "it is empty"),
    ("function", "f" * 129, "is 129 characters long"),
    ("function", "9lives", "starts with a digit"),
    ("function", "f;", "contains ';'"),
    ("function", "f(x)", "contains '('"),
    ("map", "my-map", "contains '-'"),
    ("map", "m\0", "NUL"),
    ("path component", "..", "contains '..'"),
    ("path component", ".", "starts with '.'"),
    ("path component", "a/../b", "contains '/'"),
]


@pytest.mark.parametrize("kind, name", GOOD)
def test_good_names(kind, name):
    assert check_name(name, kind) == name


@pytest.mark.parametrize("kind, name, fragment", BAD)
def test_bad_names_say_what_is_wrong_and_what_is_allowed(kind, name, fragment):
    with pytest.raises(InvalidName) as info:
        check_name(name, kind)
    message = str(info.value)
    assert message.startswith("%s name %r is invalid: " % (kind, name))
    assert fragment in message
    assert "allowed: " in message


def test_bad_table_is_long_enough():
    assert len(BAD) >= 15


@pytest.mark.parametrize("value", [None, 3, b"bytes", ["a"]])
def test_non_strings_are_refused(value):
    with pytest.raises(InvalidName, match="plugin name must be a string"):
        check_name(value, "plugin")


def test_invalid_name_is_a_value_error():
    assert issubclass(InvalidName, ValueError)


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown kind of name 'widget'"):
        check_name("x", "widget")


def test_allowed_text_differs_by_kind():
    with pytest.raises(InvalidName) as plugin_error:
        check_name("a-b", "plugin")
    assert "C identifier" in str(plugin_error.value)
    assert check_name("a-b", "dispatcher") == "a-b"


def test_plugin_symbol():
    assert plugin_symbol("bytecount", "counts") == "dpp_bytecount__counts"
    assert plugin_symbol("_p", "__x") == "dpp__p____x"


@pytest.mark.parametrize("plugin, symbol", [("a-b", "x"), ("a__b", "x"), ("a", "x y"), ("a", ""), ("", "x")])
def test_plugin_symbol_refuses_bad_parts(plugin, symbol):
    with pytest.raises(InvalidName):
        plugin_symbol(plugin, symbol)


def test_split_symbol():
    assert split_symbol("dpp_bytecount__counts") == ("bytecount", "counts")
    assert split_symbol("dpp_a__b__c") == ("a", "b__c")
    assert split_symbol("counts") is None
    assert split_symbol("dpp_nosep") is None
    assert split_symbol("dpp___x") is None
    assert split_symbol(None) is None


IDENT = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z")


@settings(max_examples=300, deadline=None)
@given(IDENT, IDENT, IDENT, IDENT)
def test_property_plugin_symbol_is_injective(p1, s1, p2, s2):
    """No two valid (plugin, symbol) pairs give one C symbol, and the prefix of one
    plugin never matches another plugin's symbols (link-mode map binding relies on it)."""
    try:
        a = plugin_symbol(p1, s1)
        b = plugin_symbol(p2, s2)
    except InvalidName:
        return
    assert split_symbol(a) == (p1, s1)
    assert (a == b) == ((p1, s1) == (p2, s2))
    if p1 != p2:
        assert not b.startswith("dpp_%s__" % p1)


def test_safe_join_builds_paths_under_root():
    assert safe_join("/sys/fs/bpf/ebpf-datapath", "plugins", "bytecount", "maps", "counts") == \
        "/sys/fs/bpf/ebpf-datapath/plugins/bytecount/maps/counts"
    assert safe_join("/sys/fs/bpf/ebpf-datapath/", "dispatchers", "eth0-in", "gen-3") == \
        "/sys/fs/bpf/ebpf-datapath/dispatchers/eth0-in/gen-3"
    assert safe_join("/", "x") == "/x"
    assert safe_join("/srv") == "/srv"


@pytest.mark.parametrize("parts", [
    ("..",),
    ("plugins", ".."),
    ("plugins", "../../etc"),
    ("/etc",),
    ("plugins", "a/b"),
    ("plugins", "."),
    ("plugins", ""),
    ("plugins", ".hidden"),
    ("plugins", "a\0"),
    ("plugins", None),
    ("plugins", "x" * 129),
])
def test_safe_join_rejects_escapes(parts):
    with pytest.raises(InvalidName):
        safe_join("/sys/fs/bpf/ebpf-datapath", *parts)


@pytest.mark.parametrize("root", ["", None, "/a\0b"])
def test_safe_join_rejects_bad_roots(root):
    with pytest.raises(InvalidName, match="root of a path"):
        safe_join(root, "x")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab_.-/ \0\u00e9", min_size=0, max_size=6), min_size=1, max_size=4))
def test_property_safe_join_never_leaves_root(parts):
    root = "/srv/state"
    try:
        path = safe_join(root, *parts)
    except InvalidName:
        return
    assert path.startswith(root + "/")
    assert os.path.normpath(path) == path
    assert path[len(root) + 1:].split("/") == list(parts)
