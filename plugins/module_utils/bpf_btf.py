# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""BTF through libbpf: an object's functions and variables (Btf), the
types of a BTF as plain data (btf_type_info), the variables of its data
sections (datasec_vars), BTF loaded in the kernel (btf_from_kernel) and the
BTF of an open object (object_btf). The ctypes binding is libbpf.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import ctypes
import errno as _errno

from ctypes import Structure, c_char_p, c_int, c_size_t, c_uint32, c_void_p

from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import (
    BTF_FUNC_EXTERN, BTF_FUNC_GLOBAL, BTF_FUNC_STATIC, BTF_KIND_ARRAY, BTF_KIND_CONST, BTF_KIND_DATASEC,
    BTF_KIND_ENUM, BTF_KIND_ENUM64, BTF_KIND_FLOAT, BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO, BTF_KIND_FWD,
    BTF_KIND_INT, BTF_KIND_PTR, BTF_KIND_RESTRICT, BTF_KIND_STRUCT, BTF_KIND_TYPE_TAG, BTF_KIND_TYPEDEF,
    BTF_KIND_UNION, BTF_KIND_VAR, BTF_KIND_VOLATILE, BpfError, _b, _call, _call_ptr, _L, _Owned, _s, declare)
# Also bpf_btf.BTF_INT_*, so a reader of BTF types (map_data.from_btf) needs this module only.
from ansible_collections.ebpf.datapath.plugins.module_utils.libbpf import (  # noqa: F401 pylint: disable=unused-import
    BTF_INT_BOOL, BTF_INT_SIGNED)

# The libbpf functions this file calls (libbpf.declare)
declare([
    ('btf__parse_elf', c_void_p, [c_char_p, c_void_p]),
    ('btf__free', None, [c_void_p]),
    ('btf__type_cnt', c_uint32, [c_void_p]),
    ('btf__type_by_id', c_void_p, [c_void_p, c_uint32]),
    ('btf__name_by_offset', c_char_p, [c_void_p, c_uint32]),
    ('btf__new_empty', c_void_p, []),
    ('btf__add_int', c_int, [c_void_p, c_char_p, c_size_t, c_int]),
    ('btf__add_ptr', c_int, [c_void_p, c_int]),
    ('btf__add_struct', c_int, [c_void_p, c_char_p, c_uint32]),
    ('btf__add_func_proto', c_int, [c_void_p, c_int]),
    ('btf__add_func_param', c_int, [c_void_p, c_char_p, c_int]),
    ('btf__add_func', c_int, [c_void_p, c_char_p, c_int, c_int]),
    ('btf__load_into_kernel', c_int, [c_void_p]),
    ('btf__fd', c_int, [c_void_p]),
    ('btf__load_from_kernel_by_id', c_void_p, [c_uint32]),
    ('bpf_object__btf', c_void_p, [c_void_p]),
])


# ---------------------------------------------------------------------------
# BTF: read an object's functions and variables, or build BTF for probes
# ---------------------------------------------------------------------------

class _BtfType(Structure):
    # struct btf_type; 'size_or_type' is the size or type union
    _fields_ = [('name_off', c_uint32), ('info', c_uint32), ('size_or_type', c_uint32)]


class _BtfParam(Structure):
    _fields_ = [('name_off', c_uint32), ('type', c_uint32)]


class _BtfVarSecinfo(Structure):
    _fields_ = [('type', c_uint32), ('offset', c_uint32), ('size', c_uint32)]


class _BtfArray(Structure):
    _fields_ = [('type', c_uint32), ('index_type', c_uint32), ('nelems', c_uint32)]


BtfFunc = collections.namedtuple('BtfFunc', 'name linkage params ret_type_name')
BtfVar = collections.namedtuple('BtfVar', 'name linkage section')

_FUNC_LINKAGE = {BTF_FUNC_STATIC: 'static', BTF_FUNC_GLOBAL: 'global', BTF_FUNC_EXTERN: 'extern'}
_VAR_LINKAGE = {0: 'static', 1: 'global', 2: 'extern'}


class Btf(_Owned):
    """A libbpf `struct btf`: parsed from an ELF object, or built from scratch."""

    _FREE = 'btf__free'

    def __init__(self, ptr):
        self._ptr = ptr

    @classmethod
    def from_elf(cls, path):
        return cls(_call_ptr('btf__parse_elf', _L().btf__parse_elf, _b(path), None, target=path))

    @classmethod
    def new_empty(cls):
        return cls(_call_ptr('btf__new_empty', _L().btf__new_empty))

    # -- reading --------------------------------------------------------

    def _type(self, type_id):
        ptr = _L().btf__type_by_id(self._ptr, type_id)
        if not ptr:
            raise BpfError('btf__type_by_id', _errno.ENOENT, target=type_id)
        t = _BtfType.from_address(ptr)
        kind = (t.info >> 24) & 0x1f
        vlen = t.info & 0xffff
        return t, kind, vlen, ptr + ctypes.sizeof(_BtfType)

    def _name(self, off):
        return _s(_L().btf__name_by_offset(self._ptr, off)) or ''

    def type_count(self):
        return _L().btf__type_cnt(self._ptr)

    def type_name(self, type_id):
        """Readable C spelling: 'int', 'struct __sk_buff *', 'const char *', '__u32'."""
        if type_id == 0:
            return 'void'
        t, kind, vlen, extra = self._type(type_id)
        name = self._name(t.name_off)
        if kind in (BTF_KIND_INT, BTF_KIND_FLOAT, BTF_KIND_TYPEDEF):
            return name
        if kind in (BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_ENUM, BTF_KIND_ENUM64):
            tag = {BTF_KIND_STRUCT: 'struct', BTF_KIND_UNION: 'union'}.get(kind, 'enum')
            return '%s %s' % (tag, name or '(anon)')
        if kind == BTF_KIND_FWD:
            return '%s %s' % ('union' if t.info >> 31 else 'struct', name)
        if kind == BTF_KIND_PTR:
            inner = self.type_name(t.size_or_type)
            return inner + ('*' if inner.endswith('*') else ' *')
        if kind in (BTF_KIND_CONST, BTF_KIND_VOLATILE, BTF_KIND_RESTRICT):
            qual = {BTF_KIND_CONST: 'const', BTF_KIND_VOLATILE: 'volatile'}.get(kind, 'restrict')
            return '%s %s' % (qual, self.type_name(t.size_or_type))
        if kind == BTF_KIND_TYPE_TAG:
            return self.type_name(t.size_or_type)
        if kind == BTF_KIND_ARRAY:
            arr = _BtfArray.from_address(extra)
            return '%s[%d]' % (self.type_name(arr.type), arr.nelems)
        if kind == BTF_KIND_FUNC_PROTO:
            return '%s (*)(...)' % self.type_name(t.size_or_type)
        return name or '?'

    def functions(self):
        """Every FUNC: name, linkage, [(param name, type)], return type."""
        out = []
        for type_id in range(1, self.type_count()):
            t, kind, vlen, _members = self._type(type_id)
            if kind != BTF_KIND_FUNC:
                continue
            proto, pkind, nparams, params_addr = self._type(t.size_or_type)
            params = []
            for i in range(nparams):
                p = _BtfParam.from_address(params_addr + i * ctypes.sizeof(_BtfParam))
                if p.type == 0:  # trailing '...' of a variadic prototype
                    params.append(('...', '...'))
                    continue
                params.append((self._name(p.name_off), self.type_name(p.type)))
            out.append(BtfFunc(self._name(t.name_off), _FUNC_LINKAGE.get(vlen, str(vlen)),
                               params, self.type_name(proto.size_or_type)))
        return out

    def variables(self):
        """Every VAR listed in a DATASEC, with its section (.maps, .bss, license ...)."""
        out = []
        for type_id in range(1, self.type_count()):
            t, kind, vlen, extra = self._type(type_id)
            if kind != BTF_KIND_DATASEC:
                continue
            section = self._name(t.name_off)
            for i in range(vlen):
                sec = _BtfVarSecinfo.from_address(extra + i * ctypes.sizeof(_BtfVarSecinfo))
                var, vkind, var_vlen, var_extra = self._type(sec.type)
                if vkind == BTF_KIND_VAR:
                    linkage = c_uint32.from_address(var_extra).value  # struct btf_var
                    out.append(BtfVar(self._name(var.name_off),
                                      _VAR_LINKAGE.get(linkage, str(linkage)), section))
                elif vkind == BTF_KIND_FUNC:  # extern functions listed in .ksyms
                    out.append(BtfVar(self._name(var.name_off),
                                      _FUNC_LINKAGE.get(var_vlen, str(var_vlen)), section))
        return out

    # -- building (kernel probes) ---------------------------------------

    def _add(self, op, fn, *args):
        return _call(op, fn, self._ptr, *args)

    def add_int(self, name, size, encoding=0):
        return self._add('btf__add_int', _L().btf__add_int, _b(name), size, encoding)

    def add_ptr(self, type_id):
        return self._add('btf__add_ptr', _L().btf__add_ptr, type_id)

    def add_struct(self, name, size):
        return self._add('btf__add_struct', _L().btf__add_struct, _b(name), size)

    def add_func_proto(self, ret_type_id):
        return self._add('btf__add_func_proto', _L().btf__add_func_proto, ret_type_id)

    def add_func_param(self, name, type_id):
        return self._add('btf__add_func_param', _L().btf__add_func_param, _b(name), type_id)

    def add_func(self, name, linkage, proto_id):
        return self._add('btf__add_func', _L().btf__add_func, _b(name), linkage, proto_id)

    def load_into_kernel(self):
        self._add('btf__load_into_kernel', _L().btf__load_into_kernel)

    @property
    def fd(self):
        return _L().btf__fd(self._ptr)


def btf_from_kernel(btf_id):
    """The kernel's BTF object `btf_id` (a loaded program's or map's) as a Btf."""
    return Btf(_call_ptr('btf__load_from_kernel_by_id', _L().btf__load_from_kernel_by_id,
                         btf_id, target=btf_id))


class _BtfMember(Structure):
    _fields_ = [('name_off', c_uint32), ('type', c_uint32), ('offset', c_uint32)]


class _BtfEnum(Structure):
    _fields_ = [('name_off', c_uint32), ('val', ctypes.c_int32)]


class _BtfEnum64(Structure):
    _fields_ = [('name_off', c_uint32), ('val_lo32', c_uint32), ('val_hi32', c_uint32)]


# One BTF type as plain data (linux/btf.h): kind (BTF_KIND_*), name, size (int,
# struct, union, enum, float), ref (the type a typedef/qualifier/pointer names,
# or an array's element), nelems (array), int_bits/int_encoding (int),
# signed (enum: kind_flag), members [(name, type_id, bit_offset, bitfield_size)],
# values [(name, int)] (enum, enum64).
BtfTypeInfo = collections.namedtuple('BtfTypeInfo', [
    'id', 'kind', 'name', 'size', 'ref', 'nelems', 'int_bits', 'int_encoding', 'signed',
    'members', 'values'])


def btf_type_info(btf, type_id):
    """BtfTypeInfo of `type_id` in `btf` (a Btf)."""
    t, kind, vlen, extra = btf._type(type_id)  # pylint: disable=protected-access
    name = btf._name(t.name_off)  # pylint: disable=protected-access
    kind_flag = bool(t.info >> 31)
    size = ref = nelems = int_bits = int_encoding = None
    members, values = [], []
    if kind in (BTF_KIND_INT, BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_ENUM, BTF_KIND_ENUM64,
                BTF_KIND_FLOAT):
        size = t.size_or_type
    else:
        ref = t.size_or_type
    if kind == BTF_KIND_INT:
        word = c_uint32.from_address(extra).value
        int_encoding, int_bits = (word >> 24) & 0x0f, word & 0xff
    elif kind == BTF_KIND_ARRAY:
        arr = _BtfArray.from_address(extra)
        ref, nelems = arr.type, arr.nelems
    elif kind in (BTF_KIND_STRUCT, BTF_KIND_UNION):
        for i in range(vlen):
            m = _BtfMember.from_address(extra + i * ctypes.sizeof(_BtfMember))
            if kind_flag:  # bitfield size in the top byte of the offset
                bit_off, bit_size = m.offset & 0xffffff, m.offset >> 24
            else:
                bit_off, bit_size = m.offset, 0
            members.append((btf._name(m.name_off), m.type, bit_off, bit_size))  # pylint: disable=protected-access
    elif kind == BTF_KIND_ENUM:
        for i in range(vlen):
            e = _BtfEnum.from_address(extra + i * ctypes.sizeof(_BtfEnum))
            val = e.val if kind_flag else e.val & 0xffffffff
            values.append((btf._name(e.name_off), val))  # pylint: disable=protected-access
    elif kind == BTF_KIND_ENUM64:
        for i in range(vlen):
            e = _BtfEnum64.from_address(extra + i * ctypes.sizeof(_BtfEnum64))
            val = (e.val_hi32 << 32) | e.val_lo32
            if kind_flag and val >= 1 << 63:
                val -= 1 << 64
            values.append((btf._name(e.name_off), val))  # pylint: disable=protected-access
    return BtfTypeInfo(type_id, kind, name, size, ref, nelems, int_bits, int_encoding,
                       kind_flag, members, values)


# ---------------------------------------------------------------------------
# Added for plugin config (plugin_config.py): the variables of an object's data
# sections with their offsets, and the initial value of its internal maps
# (.rodata, .data, .bss), written between open and load as libbpf's skeletons do.
# ---------------------------------------------------------------------------
DatasecVar = collections.namedtuple('DatasecVar', 'name linkage section type_id offset size')


def datasec_vars(btf):
    """Every VAR of every DATASEC of `btf` (a Btf), with its type id and its
    offset in the section. Offsets are final in an opened object's BTF
    (object_btf); clang's raw BTF may leave them 0."""
    out = []
    for type_id in range(1, btf.type_count()):
        t, kind, vlen, extra = btf._type(type_id)  # pylint: disable=protected-access
        if kind != BTF_KIND_DATASEC:
            continue
        section = btf._name(t.name_off)  # pylint: disable=protected-access
        for i in range(vlen):
            sec = _BtfVarSecinfo.from_address(extra + i * ctypes.sizeof(_BtfVarSecinfo))
            var, vkind, _vlen, var_extra = btf._type(sec.type)  # pylint: disable=protected-access
            if vkind != BTF_KIND_VAR:
                continue
            linkage = c_uint32.from_address(var_extra).value  # struct btf_var
            out.append(DatasecVar(btf._name(var.name_off),  # pylint: disable=protected-access
                                  _VAR_LINKAGE.get(linkage, str(linkage)), section,
                                  var.size_or_type, sec.offset, sec.size))
    return out


class _BorrowedBtf(Btf):
    """The BTF an open BpfObject owns: valid while it is open, never freed here."""

    def close(self):
        self._ptr = None


def object_btf(obj):
    """The BTF of an opened (not necessarily loaded) BpfObject, or None."""
    ptr = _L().bpf_object__btf(obj._handle())  # pylint: disable=protected-access
    return _BorrowedBtf(ptr) if ptr else None
