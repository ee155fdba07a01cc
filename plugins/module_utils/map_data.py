# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keys and values of a pinned map, typed by the map's BTF (datapath_map).

Two halves:

- **Types** (pure, no kernel): ``CType`` subclasses describe a BTF type
  (``IntType``, ``EnumType``, ``ByteArray``, ``ArrayType``, ``StructType``,
  ``RawType``) and turn YAML values into the bytes the kernel stores
  (``encode``) and back (``decode``). ``from_btf()`` builds them from a libbpf
  ``Btf``; the unit tests build them by hand.
- **Maps** (kernel): ``TypedMap`` opens a pinned map, reads its BTF from the
  kernel (the BTF the map was created with, so it describes exactly the map
  that is pinned, whatever the plugin's stored object says today), and reads,
  writes and deletes entries, with the batch operations where the map type has
  them. ``plan()`` compares what is asked with what is there (``MapPlan``).

Integers are stored in host byte order (little-endian on the machines we run
on); an IPv4/IPv6/MAC address given as text is stored as its bytes in network
order, as a program compares them with packet headers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import errno
import json
import socket
import sys

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError

_BYTEORDER = sys.byteorder


class MapDataError(DatapathError):
    """A key or value that does not fit the map's BTF type, or a map we cannot use."""


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------

class CType:
    """A C type of a map's key or value: size in bytes, name as C spells it."""

    size = 0
    name = "?"

    def encode(self, value, where):
        """bytes of `value` (from YAML); `where` names it in errors (key.addr)."""
        raise NotImplementedError

    def decode(self, raw):
        """The plain value of `raw` (bytes of self.size)."""
        raise NotImplementedError

    def refuse(self, where, value, why):
        raise MapDataError("%s: %s is not a valid %s (%d bytes): %s"
                           % (where, json.dumps(value, default=str), self.name, self.size, why))


def _parse_int(ctype, value, where):
    """An int from YAML: ints, and text ('42', '0x2a') as templating gives."""
    if isinstance(value, bool):
        ctype.refuse(where, value, "give a number, not true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 0)
        except ValueError:
            pass
    ctype.refuse(where, value, "give a whole number")
    return None  # not reached


def _ipv4(text):
    try:
        return socket.inet_pton(socket.AF_INET, text)
    except (OSError, TypeError, ValueError):
        return None


class IntType(CType):
    """A BTF INT: signed or unsigned, 1 to 16 bytes; bool; char."""

    def __init__(self, name, size, signed=False, is_bool=False, ipv4=False):
        self.name, self.size, self.signed, self.is_bool = name, size, signed, is_bool
        self.ipv4 = ipv4  # a __be32: read back as an IPv4 address

    def encode(self, value, where):
        if self.is_bool:
            if not isinstance(value, bool) and value not in (0, 1):
                self.refuse(where, value, "give true or false")
            return int(bool(value)).to_bytes(self.size, _BYTEORDER)
        if self.size == 4 and not self.signed and isinstance(value, str) and _ipv4(value):
            return _ipv4(value)  # an IPv4 address into a __be32 / __u32: network order
        if self.ipv4 and isinstance(value, str) and "." in value:
            self.refuse(where, value, "not an IPv4 address")
        number = _parse_int(self, value, where)
        bits = self.size * 8
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed else (0, (1 << bits) - 1)
        if not low <= number <= high:
            self.refuse(where, value, "out of range %d..%d" % (low, high))
        return number.to_bytes(self.size, _BYTEORDER, signed=self.signed)

    def decode(self, raw):
        if self.ipv4:
            return socket.inet_ntop(socket.AF_INET, raw)
        number = int.from_bytes(raw, _BYTEORDER, signed=self.signed)
        return bool(number) if self.is_bool else number


class EnumType(CType):
    """A BTF ENUM/ENUM64: a constant's name or any number that fits."""

    def __init__(self, name, size, signed, values):
        self.name, self.size, self.signed = name, size, signed
        self.values = dict(values)
        self.names = dict((v, k) for k, v in reversed(list(values)))

    def encode(self, value, where):
        if isinstance(value, str) and value in self.values:
            number = self.values[value]
        else:
            if isinstance(value, str) and not value.strip().lstrip("-").isdigit() and not value.startswith("0x"):
                self.refuse(where, value, "unknown name; known: %s" % ", ".join(sorted(self.values)))
            number = _parse_int(self, value, where)
        return IntType(self.name, self.size, self.signed).encode(number, where)

    def decode(self, raw):
        number = int.from_bytes(raw, _BYTEORDER, signed=self.signed)
        return self.names.get(number, number)


class ByteArray(CType):
    """u8/char[N]: hex text ('0a0b'), a list of byte values, and by size an
    IPv4 address (4), a MAC address (6) or an IPv6 address (16) as text."""

    def __init__(self, name, count):
        self.name, self.size = name, count

    def encode(self, value, where):
        if isinstance(value, list):
            if len(value) != self.size:
                self.refuse(where, value, "give exactly %d byte values" % self.size)
            out = bytearray()
            for i, item in enumerate(value):
                out += IntType("__u8", 1).encode(item, "%s[%d]" % (where, i))
            return bytes(out)
        if not isinstance(value, str):
            self.refuse(where, value, "give hex text or a list of %d byte values" % self.size)
        text = value.strip()
        if self.size == 4 and _ipv4(text):
            return _ipv4(text)
        if self.size == 16 and ":" in text:
            try:
                return socket.inet_pton(socket.AF_INET6, text)
            except (OSError, ValueError):
                self.refuse(where, value, "not an IPv6 address")
        if self.size == 6 and (":" in text or "-" in text):
            parts = text.replace("-", ":").split(":")
            if len(parts) == 6 and all(len(p) == 2 for p in parts):
                try:
                    return binascii.unhexlify("".join(parts))
                except (binascii.Error, TypeError):
                    pass
            self.refuse(where, value, "not a MAC address aa:bb:cc:dd:ee:ff")
        hexpart = text[2:] if text.lower().startswith("0x") else text
        try:
            raw = binascii.unhexlify(hexpart)
        except (binascii.Error, TypeError):
            raw = None
        if raw is None or len(raw) != self.size:
            self.refuse(where, value, "give %d bytes as hex text (%d digits)%s"
                        % (self.size, 2 * self.size, _ADDRESS_HINT.get(self.size, "")))
        return raw

    def decode(self, raw):
        if self.size == 4:
            return socket.inet_ntop(socket.AF_INET, raw)
        if self.size == 16:
            return socket.inet_ntop(socket.AF_INET6, raw)
        if self.size == 6:
            return ":".join("%02x" % b for b in bytearray(raw))
        return binascii.hexlify(raw).decode("ascii")


_ADDRESS_HINT = {4: ", or an IPv4 address", 6: ", or a MAC address", 16: ", or an IPv6 address"}


class ArrayType(CType):
    """Any other fixed array: a list of its elements."""

    def __init__(self, name, elem, count):
        self.name, self.elem, self.count = name, elem, count
        self.size = elem.size * count

    def encode(self, value, where):
        if not isinstance(value, list) or len(value) != self.count:
            self.refuse(where, value, "give a list of %d items" % self.count)
        return b"".join(self.elem.encode(item, "%s[%d]" % (where, i)) for i, item in enumerate(value))

    def decode(self, raw):
        step = self.elem.size
        return [self.elem.decode(raw[i * step:(i + 1) * step]) for i in range(self.count)]


class Field:
    """One member of a struct: name, type, byte offset."""

    def __init__(self, name, ctype, offset):
        self.name, self.ctype, self.offset = name, ctype, offset


class StructType(CType):
    """A struct (or union) as a dict by field name; missing fields are 0."""

    def __init__(self, name, size, fields, union=False):
        self.name, self.size, self.fields, self.union = name, size, list(fields), union
        self.by_name = dict((f.name, f) for f in self.fields)

    def encode(self, value, where):
        if not isinstance(value, dict):
            self.refuse(where, value, "give a dict of its fields: %s" % ", ".join(self.by_name))
        unknown = sorted(set(value) - set(self.by_name))
        if unknown:
            raise MapDataError("%s: %s has no field %s; its fields are: %s"
                               % (where, self.name, ", ".join(repr(u) for u in unknown),
                                  ", ".join(f.name for f in self.fields)))
        if self.union and len(value) > 1:
            self.refuse(where, value, "a union takes one field")
        out = bytearray(self.size)  # padding and missing fields stay 0
        for field in self.fields:
            if field.name in value:
                raw = field.ctype.encode(value[field.name], "%s.%s" % (where, field.name))
                out[field.offset:field.offset + len(raw)] = raw
        return bytes(out)

    def decode(self, raw):
        return dict((f.name, f.ctype.decode(raw[f.offset:f.offset + f.ctype.size])) for f in self.fields)


class RawType(CType):
    """What BTF does not describe (a map without BTF, a float, a pointer):
    integers for 1, 2, 4 and 8 bytes, hex text otherwise."""

    def __init__(self, size, name=None):
        self.size = size
        self.name = name or "%d bytes" % size
        self._as = IntType(self.name, size) if size in (1, 2, 4, 8) else ByteArray(self.name, size)

    def encode(self, value, where):
        return self._as.encode(value, where)

    def decode(self, raw):
        return self._as.decode(raw)


class Unsupported(CType):
    """A type we refuse to write (bitfields, floats, pointers): the message says which."""

    def __init__(self, name, size, why):
        self.name, self.size, self.why = name, size, why

    def encode(self, value, where):
        raise MapDataError("%s: cannot write %s: %s" % (where, self.name, self.why))

    def decode(self, raw):
        return binascii.hexlify(raw).decode("ascii")


def from_btf(btf, type_id, binding):
    """The CType of `type_id` in `btf` (a bpf_btf.Btf); `binding` gives the BTF
    kinds and btf_type_info (bpf_btf; a fake in the unit tests)."""
    info = binding.btf_type_info(btf, type_id)
    kind = info.kind
    name = btf.type_name(type_id)
    if kind in (binding.BTF_KIND_TYPEDEF, binding.BTF_KIND_CONST, binding.BTF_KIND_VOLATILE,
                binding.BTF_KIND_RESTRICT, binding.BTF_KIND_TYPE_TAG):
        inner = from_btf(btf, info.ref, binding)
        if kind == binding.BTF_KIND_TYPEDEF and name == "__be32" and isinstance(inner, IntType) and inner.size == 4:
            inner.ipv4 = True
        if kind == binding.BTF_KIND_TYPEDEF:
            # '__be32 (unsigned int)': the name written in C and the base type under it.
            base = getattr(inner, "base_name", inner.name)
            inner.base_name = base
            inner.name = "%s (%s)" % (name, base)
        return inner
    if kind == binding.BTF_KIND_INT:
        if info.int_bits != info.size * 8:
            return Unsupported(name, info.size, "an integer of %d bits" % info.int_bits)
        return IntType(name, info.size, signed=bool(info.int_encoding & binding.BTF_INT_SIGNED),
                       is_bool=bool(info.int_encoding & binding.BTF_INT_BOOL))
    if kind in (binding.BTF_KIND_ENUM, binding.BTF_KIND_ENUM64):
        return EnumType(name, info.size, info.signed, info.values)
    if kind == binding.BTF_KIND_ARRAY:
        elem = from_btf(btf, info.ref, binding)
        if isinstance(elem, IntType) and elem.size == 1 and not elem.is_bool:
            return ByteArray(name, info.nelems)
        return ArrayType(name, elem, info.nelems)
    if kind in (binding.BTF_KIND_STRUCT, binding.BTF_KIND_UNION):
        fields = []
        for mname, mtype, bit_off, bit_size in info.members:
            ctype = from_btf(btf, mtype, binding)
            if bit_size or bit_off % 8:
                ctype = Unsupported(ctype.name, ctype.size, "field %r is a bitfield" % mname)
            fields.append(Field(mname or "(anon)", ctype, bit_off // 8))
        return StructType(name, info.size, fields, union=kind == binding.BTF_KIND_UNION)
    size = info.size or 8
    return Unsupported(name, size, "this BTF kind (%d) cannot be given from YAML" % kind)


# ---------------------------------------------------------------------------
# Entries and per-CPU values
# ---------------------------------------------------------------------------

class EntryFormat:
    """How one map stores an entry: key and value types, per-CPU or not."""

    def __init__(self, key_type, value_type, percpu=False, ncpu=1):
        self.key_type, self.value_type = key_type, value_type
        self.percpu, self.ncpu = percpu, ncpu
        self.stride = (value_type.size + 7) // 8 * 8  # the kernel's per-CPU slot

    @property
    def value_bytes(self):
        """Size of a whole value as lookup/update copy it (all CPUs when per-CPU)."""
        return self.stride * self.ncpu if self.percpu else self.value_type.size

    def encode_key(self, key, where="key"):
        return self.key_type.encode(key, where)

    def encode_value(self, value, where="value"):
        if not self.percpu:
            return self.value_type.encode(value, where)
        if self._is_per_cpu_list(value):
            if len(value) != self.ncpu:
                raise MapDataError("%s: a per-CPU value list needs one value per possible CPU (%d), got %d; "
                                   "or give one value for all CPUs" % (where, self.ncpu, len(value)))
            parts = [self.value_type.encode(v, "%s[cpu %d]" % (where, i)) for i, v in enumerate(value)]
        else:
            parts = [self.value_type.encode(value, where)] * self.ncpu
        pad = b"\0" * (self.stride - self.value_type.size)
        return b"".join(p + pad for p in parts)

    def _is_per_cpu_list(self, value):
        if not isinstance(value, list):
            return False
        # A list is the value itself when the value type is an array of scalars.
        # per-CPU only when its items are lists or text.
        if isinstance(self.value_type, (ArrayType, ByteArray)):
            return bool(value) and all(isinstance(v, (list, str)) for v in value)
        return True

    def same_value(self, a, b):
        """Compare stored values; per-CPU slot padding is not part of the value."""
        if not self.percpu:
            return a == b
        size = self.value_type.size
        return all(a[i * self.stride:i * self.stride + size] == b[i * self.stride:i * self.stride + size]
                   for i in range(self.ncpu))

    def decode_key(self, raw):
        return self.key_type.decode(raw)

    def decode_value(self, raw):
        if not self.percpu:
            return self.value_type.decode(raw)
        size = self.value_type.size
        return [self.value_type.decode(raw[i * self.stride:i * self.stride + size]) for i in range(self.ncpu)]

    def zero_value(self):
        return b"\0" * self.value_bytes


def text_of(value):
    """One-line text of a decoded key or value, for the diff."""
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


class MapPlan:
    """What a run changes: writes (key -> value bytes), deletes (keys), and
    the entries added, removed and changed (as bytes: decoded to text only
    when the diff is asked for, which is most of the cost of 10,000 entries).
    Arrays cannot delete: their 'deletes' are zero writes, listed as changed."""

    def __init__(self, entry_format):
        self.format = entry_format
        self.writes = {}
        self.deletes = []
        self.added, self.removed, self.changed = [], [], []  # (key, value), (key, old), (key, old, new)

    @property
    def has_changes(self):
        return bool(self.writes or self.deletes)

    def diff_text(self):
        """One line an entry: '+ key: value', '- key: value', '~ key: old -> new'."""
        key, value = self.format.decode_key, self.format.decode_value
        lines = ["+ %s: %s" % (text_of(key(k)), text_of(value(v))) for k, v in self.added]
        lines += ["- %s: %s" % (text_of(key(k)), text_of(value(v))) for k, v in self.removed]
        lines += ["~ %s: %s -> %s" % (text_of(key(k)), text_of(value(o)), text_of(value(n)))
                  for k, o, n in self.changed]
        return "\n".join(lines) + ("\n" if lines else "")


def encode_entries(fmt, entries, state):
    """[(key bytes, value bytes or None)] of the task's entries, every one
    checked before anything is written; None values for state=absent."""
    out = []
    seen = {}
    for i, entry in enumerate(entries):
        where = "entries[%d]" % i
        if not isinstance(entry, dict) or "key" not in entry:
            raise MapDataError("%s: give a dict with 'key'%s" % (where, " and 'value'" if state == "present" else ""))
        extra = sorted(set(entry) - set(("key", "value")))
        if extra:
            raise MapDataError("%s: unknown item %s; an entry has 'key' and 'value'" % (where, ", ".join(extra)))
        key = fmt.encode_key(entry["key"], where + ".key")
        if key in seen:
            raise MapDataError("%s: key %s is also entries[%d]; give each key once"
                               % (where, text_of(entry["key"]), seen[key]))
        seen[key] = i
        if state == "present":
            if "value" not in entry:
                raise MapDataError("%s: state=present needs a 'value'" % where)
            out.append((key, fmt.encode_value(entry["value"], where + ".value")))
        else:
            out.append((key, None))
    return out


def plan(fmt, current, wanted, state, exact, is_array):
    """MapPlan from current {key: value bytes} and wanted [(key, value|None)]."""
    result = MapPlan(fmt)
    zero = fmt.zero_value()
    if state == "present":
        for key, value in wanted:
            old = current.get(key)
            if old is None:
                result.writes[key] = value
                result.added.append((key, value))
            elif not fmt.same_value(old, value):
                result.writes[key] = value
                result.changed.append((key, old, value))
        if exact:
            keep = set(k for k, _v in wanted)
            for key in sorted(k for k in current if k not in keep):
                _remove(result, fmt, key, current[key], is_array, zero)
    else:
        for key, _none in wanted:
            if key in current:
                _remove(result, fmt, key, current[key], is_array, zero)
    return result


def _remove(result, fmt, key, old, is_array, zero):
    """An array keeps every index: 'removing' one writes zero to it."""
    if is_array:
        if fmt.same_value(old, zero):
            return
        result.writes[key] = zero
        result.changed.append((key, old, zero))
    else:
        result.deletes.append(key)
        result.removed.append((key, old))


# ---------------------------------------------------------------------------
# Pinned maps in the kernel
# ---------------------------------------------------------------------------

def _libbpf():
    from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
    return libbpf


def _bpf_maps():
    from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps
    return bpf_maps


def _bpf_btf():
    from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_btf
    return bpf_btf


class TypedMap:
    """A pinned map opened with its BTF: read, write, delete (batch when the
    kernel has it for this map type). Use with ``with``: closes the fd."""

    def __init__(self, path):
        lb = _libbpf()
        self.path = path
        self.fd = lb.obj_get(path)
        try:
            self.info = lb.map_info(self.fd)
            if self.info.type in _OPAQUE_TYPES(lb):
                raise MapDataError("map %s is a %s map: its values are not data datapath_map can write"
                                   % (path, _type_name(self.info.type)))
            self.format = self._format(lb)
        except BaseException:
            lb.close_fd(self.fd)
            raise

    def _format(self, lb):
        ids = _bpf_maps().map_btf_ids(self.fd)
        key_type = value_type = None
        if ids.btf_id and ids.key_type_id and ids.value_type_id:
            btf = _bpf_btf().btf_from_kernel(ids.btf_id)
            try:
                key_type = from_btf(btf, ids.key_type_id, _bpf_btf())
                value_type = from_btf(btf, ids.value_type_id, _bpf_btf())
            finally:
                btf.close()
        # Without BTF (or with sizes BTF disagrees with) keys and values are plain bytes.
        if key_type is None or key_type.size != self.info.key_size:
            key_type = RawType(self.info.key_size)
        if value_type is None or value_type.size != self.info.value_size:
            value_type = RawType(self.info.value_size)
        percpu = self.info.type in lb.PERCPU_MAP_TYPES
        return EntryFormat(key_type, value_type, percpu=percpu, ncpu=lb.num_possible_cpus() if percpu else 1)

    def close(self):
        _libbpf().close_fd(self.fd)
        self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def is_array(self):
        lb = _libbpf()
        return self.info.type in (lb.BPF_MAP_TYPE_ARRAY, lb.BPF_MAP_TYPE_PERCPU_ARRAY)

    @property
    def _batch_ok(self):
        lb = _libbpf()
        return self.info.type in (lb.BPF_MAP_TYPE_HASH, lb.BPF_MAP_TYPE_PERCPU_HASH, lb.BPF_MAP_TYPE_LRU_HASH,
                                  lb.BPF_MAP_TYPE_LRU_PERCPU_HASH, lb.BPF_MAP_TYPE_ARRAY,
                                  lb.BPF_MAP_TYPE_PERCPU_ARRAY)

    def read(self):
        """{key bytes: value bytes} of every entry."""
        lb = _libbpf()
        size = self.format.value_bytes
        if self._batch_ok:
            try:
                chunk = max(1, min(self.info.max_entries, 8192))
                return dict(_bpf_maps().map_lookup_batch(self.fd, self.info.key_size, size, chunk))
            except lb.BpfError:
                pass  # an older kernel: one entry at a time below
        out = {}
        for key in _bpf_maps().map_keys(self.fd, self.info.key_size):
            raw = _bpf_maps().map_lookup(self.fd, key, size)
            if raw is not None:
                out[key] = raw
        return out

    def apply(self, change):
        """Write and delete what the MapPlan says."""
        lb = _libbpf()
        if change.deletes:
            done = False
            if self._batch_ok and not self.is_array:
                try:
                    _bpf_maps().map_delete_batch(self.fd, change.deletes)
                    done = True
                except lb.BpfError:
                    done = False
            if not done:
                for key in change.deletes:
                    _bpf_maps().map_delete(self.fd, key)
        if change.writes:
            keys = list(change.writes)
            if self._batch_ok:
                try:
                    _bpf_maps().map_update_batch(self.fd, keys, [change.writes[k] for k in keys])
                    return
                except lb.BpfError as exc:
                    if exc.errno == errno.E2BIG:  # full (check_capacity saw fewer entries: a program added some)
                        raise MapDataError("map %s is full (max_entries %d): %s"
                                           % (self.path, self.info.max_entries, exc))
            for key in keys:
                _bpf_maps().map_update(self.fd, key, change.writes[key])


def _OPAQUE_TYPES(lb):  # pylint: disable=invalid-name
    return (lb.BPF_MAP_TYPE_PROG_ARRAY, lb.BPF_MAP_TYPE_PERF_EVENT_ARRAY, lb.BPF_MAP_TYPE_ARRAY_OF_MAPS,
            lb.BPF_MAP_TYPE_HASH_OF_MAPS, lb.BPF_MAP_TYPE_RINGBUF)


def _type_name(map_type):
    names = {3: "prog_array", 4: "perf_event_array", 12: "array_of_maps", 13: "hash_of_maps", 27: "ringbuf"}
    return names.get(map_type, "type %d" % map_type)


def check_capacity(tmap, current, change):
    """Refuse, before any write, a change that would hold more entries than max_entries."""
    if tmap.is_array:
        for key in change.writes:
            index = int.from_bytes(key, _BYTEORDER)
            if index >= tmap.info.max_entries:
                raise MapDataError("key %d is past the end of array map %s (max_entries %d: keys 0..%d)"
                                   % (index, tmap.path, tmap.info.max_entries, tmap.info.max_entries - 1))
        return
    new_keys = sum(1 for k in change.writes if k not in current)
    after = len(current) - len(change.deletes) + new_keys
    if after > tmap.info.max_entries:
        raise MapDataError("map %s would hold %d entries but its max_entries is %d: remove entries "
                           "(exact: true drops the ones not listed) or make the map bigger in the plugin"
                           % (tmap.path, after, tmap.info.max_entries))


def decode_map(path, limit=None):
    """[{key, value}] of the map pinned at path, decoded with its BTF (for
    facts: datapath_info)."""
    with TypedMap(path) as tmap:
        out = []
        for key, value in sorted(tmap.read().items()):
            out.append({"key": tmap.format.decode_key(key), "value": tmap.format.decode_value(value)})
            if limit is not None and len(out) >= limit:
                break
        return out
