# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a host gets its compiled objects: its own clang, or the controller.

Besides plugins, a host compiles C it generates itself: the dispatcher of each
chain, the throwaway programs that verify a plugin at install, the freplace
wrappers. With ``build_on: controller`` the host runs no compiler at all: the
engine first lists every generated C a change needs (dispatcher.generated_sources,
plugin_load.trial_sources) and, when an object is missing, stops before it
changes anything with NeedsBuild, which names the sources. The action plugin
(plugin_utils/controller_build.py) compiles them on the controller and runs the
module again with the objects (``generated_objects``); they are kept here under
``<cache_dir>/generated/<key>.o``, ``key`` being the sha256 of the name and the
text, so a later run (a rerun, a restore at boot) finds them without asking.

The key is computed from the text alone, so a host needs no compiler to know
which object it needs; what the object holds is the controller's build of that
text with the collection's own compile flags (toolchain.py), byte for byte what
this host's clang would make from it when the two clangs are the same.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.files import atomic_write, makedirs_private, sha256_file

BUILD_ON = ("target", "controller", "auto")

# How many generated sources one NeedsBuild names at most in its message.
_SHOWN = 5


def generated_key(name, text):
    """The name of the object of generated C: sha256 of its name and text."""
    if not name.endswith(".c"):
        name += ".c"
    return hashlib.sha256(name.encode("utf-8") + b"\0" + text.encode("utf-8")).hexdigest()


class NeedsBuild(DatapathError):
    """This host needs objects of generated C that it may not compile itself.
    Raised before anything is changed; ``sources`` is [(name, text)]."""

    def __init__(self, sources):
        self.sources = list(sources)
        names = ", ".join("%s (%s)" % (n, generated_key(n, t)[:12]) for n, t in self.sources[:_SHOWN])
        more = " and %d more" % (len(self.sources) - _SHOWN) if len(self.sources) > _SHOWN else ""
        DatapathError.__init__(
            self, "this run needs %d generated program(s) compiled, %s%s, and this host does not compile them "
                  "(build_on: controller): run the task through its action plugin, which compiles them on the "
                  "controller, or set build_on: target where the host has clang" % (len(self.sources), names, more))

    def result_extra(self):
        """What the module returns beside its message: the sources to build."""
        return {"needs_build": [{"name": n, "text": t, "key": generated_key(n, t)} for n, t in self.sources]}


class Built:
    """An object of generated C found here (the toolchain's CompileResult shape)."""

    def __init__(self, object_path, sha256):
        self.object_path = object_path
        self.sha256 = sha256
        self.cached = True
        self.argv = []
        self.warnings = ""


class Builder:
    """The compiler a run uses: this host's clang behind its compile cache
    (toolchain.Toolchain, made on first use) and the controller's objects of
    generated C. ``compile_on_host`` False (build_on: controller) never starts
    clang: a generated object that is missing raises NeedsBuild and a plugin
    source cannot be compiled here."""

    def __init__(self, cache_dir, run, compile_on_host=True):
        self.cache_dir = os.path.abspath(cache_dir)
        self.run = run
        self.compile_on_host = compile_on_host
        self._toolchain = None

    # -- this host's clang ------------------------------------------------------
    @property
    def toolchain(self):
        if self._toolchain is None:
            from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
            if not self.compile_on_host:
                raise DatapathError("build_on: controller, so this host compiles nothing; the plugin's objects "
                                    "must come from the controller (the action plugin ships them)")
            if self.run is None:
                raise DatapathError("this run cannot start clang: the Engine was made without a command runner")
            self._toolchain = Toolchain(self.cache_dir, self.run)
        return self._toolchain

    @property
    def clang(self):
        return self.toolchain.clang

    @property
    def has_clang(self):
        """True when this host may and can compile (a Toolchain is made to know)."""
        if not self.compile_on_host or self.run is None:
            return False
        try:
            return self.toolchain is not None
        except DatapathError:
            return False

    def compile(self, *args, **kwargs):
        return self.toolchain.compile(*args, **kwargs)

    # -- generated C -------------------------------------------------------------
    def object_path(self, name, text):
        return os.path.join(self.cache_dir, "generated", generated_key(name, text) + ".o")

    def compile_source_text(self, text, name, **kwargs):
        path = self.object_path(name, text)
        if os.path.isfile(path):
            return Built(path, sha256_file(path))
        if not self.compile_on_host:
            raise NeedsBuild([(name, text)])
        return self.toolchain.compile_source_text(text, name, **kwargs)

    def require(self, sources):
        """Raise NeedsBuild naming every source in sources ([(name, text)])
        whose object is not here, when this host does not compile them."""
        if self.compile_on_host:
            return
        missing = []
        for name, text in sources:
            if not os.path.isfile(self.object_path(name, text)) and (name, text) not in missing:
                missing.append((name, text))
        if missing:
            raise NeedsBuild(missing)

    def accept(self, shipped):
        """Keep the controller's objects: shipped is [{"key", "path", "sha256"}]
        (the module option generated_objects). Each file must hash to its sha256."""
        for item in shipped or ():
            key, path, digest = item.get("key"), item.get("path"), (item.get("sha256") or "").lower()
            if not (isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
                raise DatapathError("generated_objects: key %r is not a sha256 in hex" % (key,))
            try:
                found = sha256_file(path)
            except (IOError, OSError, TypeError) as exc:
                raise DatapathError("generated_objects: %s cannot be read: %s" % (path, exc))
            if found != digest:
                raise DatapathError("generated_objects: %s has sha256 %s, expected %s; refusing it"
                                    % (path, found, digest))
            with open(path, "rb") as handle:
                data = handle.read()
            target = os.path.join(self.cache_dir, "generated", key + ".o")
            makedirs_private(os.path.dirname(target))
            atomic_write(target, data, crash_at="compile_cache")
