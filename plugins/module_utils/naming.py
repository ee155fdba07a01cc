# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of names that become paths or C symbols.

Dispatcher and plugin names become directories under ``bpffs_root``; plugin, function
and map names also become C symbols in link mode (``dpp_<plugin>__<symbol>``). Every
name is checked here before any path or source text is made from it, so a task can
never write outside our trees or inject C.

| kind | characters | length |
| --- | --- | --- |
| dispatcher | ``[A-Za-z0-9_.-]``, not starting with ``.`` or ``-``, no ``..`` | 64 |
| plugin | C identifier, no ``__``, not ending in ``_`` | 64 |
| function, map | C identifier | 128 |
| path component (``safe_join``) | as dispatcher | 128 |
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError

SYMBOL_PREFIX = "dpp_"
SYMBOL_SEPARATOR = "__"

_IDENTIFIER = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
_PATH_CHARS = re.compile(r"\A[A-Za-z0-9_.-]+\Z")

# kind -> (limit, identifier?, what is allowed, said in every message)
_KINDS = {
    "dispatcher": (64, False, "ASCII letters, digits, '_', '.' and '-', not starting with '.' or '-', "
                              "without '..', at most 64 characters"),
    "plugin": (64, True, "a C identifier (ASCII letters, digits and '_', not starting with a digit) "
                         "without '__' and not ending in '_', at most 64 characters"),
    "function": (128, True, "a C identifier (ASCII letters, digits and '_', not starting with a digit), "
                            "at most 128 characters"),
    "map": (128, True, "a C identifier (ASCII letters, digits and '_', not starting with a digit), "
                       "at most 128 characters"),
    "path component": (128, False, "ASCII letters, digits, '_', '.' and '-', not starting with '.' or '-', "
                                   "without '..', at most 128 characters"),
}


class InvalidName(DatapathError, ValueError):
    """A name that may not become a path or a C symbol; the message says why and what is allowed."""


def _problem(value, limit, identifier):
    """What is wrong with value, or None."""
    if value == "":
        return "it is empty"
    if "\0" in value:
        return "it contains a NUL character"
    if "/" in value:
        return "it contains '/'"
    if ".." in value:
        return "it contains '..'"
    for char in value:
        if char.isspace():
            return "it contains whitespace (%r)" % char
    for char in value:
        if ord(char) > 127:
            return "it contains the non-ASCII character %r" % char
    if value[0] in ".-":
        return "it starts with '%s'" % value[0]
    if len(value) > limit:
        return "it is %d characters long" % len(value)
    if identifier:
        if value[0].isdigit():
            return "it starts with a digit"
        if not _IDENTIFIER.match(value):
            bad = [c for c in value if not (c.isalnum() or c == "_")][0]
            return "it contains %r" % bad
    elif not _PATH_CHARS.match(value):
        bad = [c for c in value if not (c.isalnum() or c in "_.-")][0]
        return "it contains %r" % bad
    return None


def check_name(value, what):
    """Return value if it is a valid name of kind ``what``, else raise InvalidName.

    what: 'dispatcher', 'plugin', 'function', 'map' or 'path component'.
    """
    if what not in _KINDS:
        raise ValueError("check_name: unknown kind of name %r; one of %s" % (what, ", ".join(sorted(_KINDS))))
    limit, identifier, allowed = _KINDS[what]
    if not isinstance(value, str):
        raise InvalidName("%s name must be a string, got %r (%s); allowed: %s"
                          % (what, value, type(value).__name__, allowed))
    problem = _problem(value, limit, identifier)
    if problem is None and what == "plugin":
        # Plugin names are the first part of dpp_<plugin>__<symbol>: without '__' inside
        # and '_' at the end, the first '__' after the prefix is always the separator, so
        # no two (plugin, symbol) pairs give one C symbol and a prefix dpp_<plugin>__ never
        # matches another plugin's symbols.
        if SYMBOL_SEPARATOR in value:
            problem = "it contains '__', which separates plugin and symbol in link mode"
        elif value.endswith("_"):
            problem = "it ends in '_', which would blur the '__' separating plugin and symbol in link mode"
    if problem is not None:
        raise InvalidName("%s name %r is invalid: %s; allowed: %s" % (what, value, problem, allowed))
    return value


def plugin_symbol(plugin, symbol):
    """The namespaced C symbol of a plugin's global in link mode: dpp_<plugin>__<symbol>."""
    check_name(plugin, "plugin")
    check_name(symbol, "function")
    return SYMBOL_PREFIX + plugin + SYMBOL_SEPARATOR + symbol


def split_symbol(name):
    """The inverse of plugin_symbol: (plugin, symbol), or None if name is not namespaced."""
    if not isinstance(name, str) or not name.startswith(SYMBOL_PREFIX):
        return None
    rest = name[len(SYMBOL_PREFIX):]
    cut = rest.find(SYMBOL_SEPARATOR)
    if cut <= 0:
        return None
    plugin, symbol = rest[:cut], rest[cut + len(SYMBOL_SEPARATOR):]
    try:
        check_name(plugin, "plugin")
        check_name(symbol, "function")
    except InvalidName:
        return None
    return plugin, symbol


def safe_join(root, *parts):
    """root/part/part..., each part a checked path component, the result under root.

    No realpath: parts are validated, not resolved, so this never follows a symlink
    planted in the tree and works for paths that do not exist yet.
    """
    if not isinstance(root, str) or not root or "\0" in root:
        raise InvalidName("root of a path must be a non-empty string without NUL, got %r" % (root,))
    root = os.path.normpath(root)
    for part in parts:
        check_name(part, "path component")
    path = os.path.join(root, *parts)
    # validated parts cannot climb out; this guards the rule itself
    prefix = root if root.endswith("/") else root + "/"
    if parts and (os.path.normpath(path) != path or not path.startswith(prefix)):
        raise InvalidName("path %r leaves its root %r" % (path, root))
    return path
