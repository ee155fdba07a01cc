# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BTF-typed encoder/decoder of datapath_map, on types built by hand (no kernel)."""

import socket
import struct

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.map_data import (
    ArrayType, ByteArray, EnumType, Field, IntType, EntryFormat, MapDataError, RawType, StructType,
    Unsupported, encode_entries, from_btf, plan)

U8 = IntType("__u8", 1)
U16 = IntType("__u16", 2)
U32 = IntType("__u32", 4)
S64 = IntType("__s64", 8, signed=True)
BOOL = IntType("_Bool", 1, is_bool=True)
BE32 = IntType("__be32 (unsigned int)", 4, ipv4=True)
ACTION = EnumType("enum action", 4, False, [("ACT_PASS", 0), ("ACT_DROP", 1)])
KEY = StructType("struct flow_key", 8, [Field("addr", BE32, 0), Field("port", U16, 4), Field("proto", U8, 6)])
VALUE = StructType("struct flow_val", 24, [
    Field("mac", ByteArray("__u8[6]", 6), 0), Field("weight", U16, 6), Field("act", ACTION, 8),
    Field("on", BOOL, 12), Field("limit", S64, 16)])


@pytest.mark.parametrize("ctype,value,raw", [
    (U8, 255, b"\xff"),
    (U16, "0x10", b"\x10\x00"),
    (S64, -2, struct.pack("<q", -2)),
    (IntType("__u128", 16), 1 << 100, (1 << 100).to_bytes(16, "little")),
    (BOOL, True, b"\x01"),
    (ACTION, "ACT_DROP", b"\x01\0\0\0"),
    (ACTION, 7, b"\x07\0\0\0"),
    (U32, "10.0.0.1", b"\x0a\0\0\x01"),
    (ByteArray("__u8[4]", 4), "192.168.1.2", bytes([192, 168, 1, 2])),
    (ByteArray("__u8[16]", 16), "2001:db8::1", socket.inet_pton(socket.AF_INET6, "2001:db8::1")),
    (ByteArray("__u8[6]", 6), "aa:bb:cc:dd:ee:ff", bytes.fromhex("aabbccddeeff")),
    (ByteArray("char[3]", 3), "616263", b"abc"),
    (ByteArray("char[3]", 3), [1, 2, 3], b"\x01\x02\x03"),
    (ArrayType("__u16[2]", U16, 2), [1, 2], b"\x01\0\x02\0"),
    (RawType(2), 5, b"\x05\0"),
    (RawType(3), "010203", b"\x01\x02\x03"),
])
def test_encode(ctype, value, raw):
    assert ctype.encode(value, "v") == raw


def test_struct_round_trip_and_missing_fields_zero():
    value = {"mac": "02:00:00:00:00:01", "act": "ACT_DROP", "on": True, "limit": -1}
    raw = VALUE.encode(value, "value")
    assert len(raw) == 24 and raw[6:8] == b"\0\0", "weight was not given: 0"
    assert VALUE.decode(raw) == dict(value, weight=0)
    assert KEY.decode(KEY.encode({"addr": "10.1.2.3", "port": 53}, "key")) == {
        "addr": "10.1.2.3", "port": 53, "proto": 0}


@pytest.mark.parametrize("ctype,value,message", [
    (U16, 70000, "v: 70000 is not a valid __u16 (2 bytes): out of range 0..65535"),
    (IntType("__s8", 1, signed=True), -129, "out of range -128..127"),
    (U32, True, "give a number, not true/false"),
    (U32, "ten", "give a whole number"),
    (BOOL, 3, "give true or false"),
    (ACTION, "ACT_NOPE", "unknown name; known: ACT_DROP, ACT_PASS"),
    (BE32, "10.0.0.256", "not an IPv4 address"),
    (ByteArray("__u8[6]", 6), "aa:bb", "not a MAC address"),
    (ByteArray("__u8[16]", 16), "::zz", "not an IPv6 address"),
    (ByteArray("char[3]", 3), "6162", "give 3 bytes as hex text (6 digits)"),
    (ByteArray("char[3]", 3), [1, 2], "give exactly 3 byte values"),
    (ByteArray("char[3]", 3), [1, 2, 300], "v[2]: 300 is not a valid __u8"),
    (ArrayType("__u16[2]", U16, 2), [1], "give a list of 2 items"),
    (VALUE, {"weigth": 1}, "struct flow_val has no field 'weigth'; its fields are: mac, weight, act, on, limit"),
    (VALUE, 5, "give a dict of its fields"),
    (VALUE, {"mac": "zz"}, "v.mac"),
    (Unsupported("float", 4, "floats are not supported"), 1.0, "cannot write float: floats are not supported"),
])
def test_refusals_name_the_field_and_type(ctype, value, message):
    with pytest.raises(MapDataError) as err:
        ctype.encode(value, "v")
    assert message in str(err.value)
    assert isinstance(err.value, DatapathError)


def test_decode_addresses_and_enums():
    assert ByteArray("a", 4).decode(b"\x0a\0\0\x01") == "10.0.0.1"
    assert ByteArray("a", 6).decode(bytes.fromhex("aabbccddeeff")) == "aa:bb:cc:dd:ee:ff"
    assert ByteArray("a", 16).decode(socket.inet_pton(socket.AF_INET6, "fe80::1")) == "fe80::1"
    assert ByteArray("a", 3).decode(b"abc") == "616263"
    assert ACTION.decode(b"\x01\0\0\0") == "ACT_DROP" and ACTION.decode(b"\x09\0\0\0") == 9


def test_percpu_values():
    fmt = EntryFormat(U32, IntType("__u32", 4), percpu=True, ncpu=3)
    assert fmt.stride == 8 and fmt.value_bytes == 24
    assert fmt.encode_value(5) == (struct.pack("<I", 5) + b"\0" * 4) * 3
    assert fmt.decode_value(fmt.encode_value([1, 2, 3])) == [1, 2, 3]
    with pytest.raises(MapDataError, match="one value per possible CPU \\(3\\), got 2"):
        fmt.encode_value([1, 2])
    # A per-CPU array value: a list of ints is the value, a list of lists is per CPU.
    arr = EntryFormat(U32, ArrayType("__u16[2]", U16, 2), percpu=True, ncpu=2)
    assert arr.encode_value([1, 2]) == (b"\x01\0\x02\0" + b"\0" * 4) * 2
    assert arr.decode_value(arr.encode_value([[1, 2], [3, 4]])) == [[1, 2], [3, 4]]


def test_entries_checked_and_plan():
    fmt = EntryFormat(KEY, VALUE)
    entries = [{"key": {"addr": "10.0.0.1", "port": 1}, "value": {"limit": 1}},
               {"key": {"addr": "10.0.0.2", "port": 2}, "value": {"limit": 2}}]
    wanted = encode_entries(fmt, entries, "present")
    k1, k2 = wanted[0][0], wanted[1][0]
    other = fmt.encode_key({"addr": "10.0.0.9"})
    current = {k1: fmt.encode_value({"limit": 1}), other: fmt.encode_value({})}

    change = plan(fmt, current, wanted, "present", exact=False, is_array=False)
    assert list(change.writes) == [k2] and change.deletes == [] and len(change.added) == 1
    assert change.diff_text().startswith('+ {"addr": "10.0.0.2", "port": 2, "proto": 0}: ')

    change = plan(fmt, current, wanted, "present", exact=True, is_array=False)
    assert change.deletes == [other] and change.diff_text().count("\n- ") == 1

    change = plan(fmt, current, [(k1, None), (k2, None)], "absent", exact=False, is_array=False)
    assert change.deletes == [k1] and not change.writes

    change = plan(fmt, current, [(k1, None)], "absent", exact=False, is_array=True)
    assert change.writes == {k1: b"\0" * 24} and change.changed and not change.deletes

    assert not plan(fmt, {k1: wanted[0][1], k2: wanted[1][1]}, wanted, "present", False, False).has_changes


@pytest.mark.parametrize("entries,message", [
    ([{"key": {}, "value": {}}, {"key": {}, "value": {}}], "entries[1]: key {} is also entries[0]; give each key once"),
    ([{"key": {}}], "entries[0]: state=present needs a 'value'"),
    ([{"value": {}}], "entries[0]: give a dict with 'key' and 'value'"),
    ([{"key": {}, "value": {}, "vlaue": 1}], "entries[0]: unknown item vlaue"),
    ([{"key": {"port": -1}, "value": {}}], "entries[0].key.port: -1 is not a valid __u16"),
])
def test_entry_refusals(entries, message):
    with pytest.raises(MapDataError) as err:
        encode_entries(EntryFormat(KEY, VALUE), entries, "present")
    assert message in str(err.value)


class FakeBtf:
    """A BTF as plain BtfTypeInfo records (what bpf_btf.btf_type_info returns), no kernel."""

    def __init__(self, types):
        self.types = dict((t.id, t) for t in types)

    def type_name(self, type_id):
        return self.types[type_id].name or "(anon)"


def _t(type_id, kind, name="", size=None, ref=None, nelems=None, bits=None, enc=0, signed=False, members=(),
       values=()):
    return bpf_btf.BtfTypeInfo(type_id, kind, name, size, ref, nelems, bits, enc, signed, list(members),
                               list(values))


class FakeBinding:
    """The parts of libbpf.py from_btf uses, reading a FakeBtf."""

    def __getattr__(self, name):
        return getattr(libbpf, name)

    @staticmethod
    def btf_type_info(btf, type_id):
        return btf.types[type_id]


def test_from_btf_typedefs_structs_arrays_enums_bitfields():
    k = libbpf
    btf = FakeBtf([
        _t(1, k.BTF_KIND_INT, "unsigned int", size=4, bits=32),
        _t(2, k.BTF_KIND_TYPEDEF, "__be32", ref=1),
        _t(3, k.BTF_KIND_INT, "unsigned char", size=1, bits=8),
        _t(4, k.BTF_KIND_ARRAY, "__u8[6]", ref=3, nelems=6),
        _t(5, k.BTF_KIND_ENUM, "enum proto", size=4, values=[("TCP", 6), ("UDP", 17)]),
        _t(6, k.BTF_KIND_INT, "_Bool", size=1, bits=8, enc=k.BTF_INT_BOOL),
        _t(7, k.BTF_KIND_CONST, "const int", ref=8),
        _t(8, k.BTF_KIND_INT, "int", size=4, bits=32, enc=k.BTF_INT_SIGNED),
        _t(9, k.BTF_KIND_STRUCT, "struct v", size=24, members=[
            ("addr", 2, 0, 0), ("mac", 4, 32, 0), ("proto", 5, 96, 0), ("on", 6, 128, 0), ("n", 7, 160, 0)]),
        _t(10, k.BTF_KIND_STRUCT, "struct bits", size=4, members=[("flag", 1, 0, 1)]),
    ])
    ctype = from_btf(btf, 9, FakeBinding())
    assert isinstance(ctype, StructType) and ctype.size == 24
    value = {"addr": "10.0.0.1", "mac": "aa:bb:cc:dd:ee:ff", "proto": "UDP", "on": True, "n": -3}
    raw = ctype.encode(value, "value")
    assert raw[:4] == b"\x0a\0\0\x01" and raw[4:10] == bytes.fromhex("aabbccddeeff") and raw[12] == 17
    assert ctype.decode(raw) == value
    assert ctype.by_name["addr"].ctype.name == "__be32 (unsigned int)"
    with pytest.raises(MapDataError, match="value.flag: cannot write unsigned int: field 'flag' is a bitfield"):
        from_btf(btf, 10, FakeBinding()).encode({"flag": 1}, "value")
