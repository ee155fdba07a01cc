# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry's schema: typed records and their JSON form.

registry.json holds one ``Registry``: ``Plugin`` records by name and
``Dispatcher`` records by name. A dispatcher is what was asked for (its
``DispatcherRequest``: attach point, mode, main, hooks ...) plus what runs:
the kept ``Generation`` records, the ``Attachment`` that holds the running
one at its attach point (one record type per attach backend), and, while a
swap is in flight, the write-ahead ``Pending`` record.

Every record validates its own fields (``validate``) and reads and writes its
own JSON (``from_json`` / ``to_json``). ``registry_from_json`` migrates a
registry written by an older version of the collection and refuses one
written by a newer version.

Schema versions:
  1  the first release (``version: 1``, no ``schema_version``).
  2  ``schema_version: 2``; ``high_water`` per dispatcher (the highest
     generation number ever used); a generation's build inputs under ``build``
     (was ``recipe``) and its request under ``request`` (was ``spec``);
     attachment records without ``kind``. ``version`` is written as 2 too, so
     the code of schema 1 refuses the file with its "registry version 2" message
     instead of misreading it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import hashlib

from ansible_collections.ebpf.datapath.plugins.module_utils.defaults import (
    DEFAULT_CILIUM_GLOBALS, DEFAULT_HOOK, DEFAULT_KEEP_GENERATIONS, DEFAULT_MODE, DEFAULT_PRIORITY,
    DEFAULT_TC_BACKEND, check_range)
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError

SCHEMA_VERSION = 2

ATTACH_POINTS = ("tc_ingress", "tc_egress", "xdp", "cilium_custom")
MODES = ("auto", "link", "freplace", "inline")
TC_BACKENDS = ("auto", "tcx", "clsact")
HOOKS = ("pre", "post")
# How an entry program's verdict enters the chain: its pass verdict (and -1)
# continues, anything else ends the chain (default); or whatever it returns ends it.
VERDICTS = ("pass_continues", "final")
DEFAULT_VERDICT = "pass_continues"
# Cilium's custom-call prog array keys.
CILIUM_CUSTOM_HOOKS = {"ipv4_ingress": 0, "ipv4_egress": 1, "ipv6_ingress": 2, "ipv6_egress": 3}


class SchemaError(DatapathError):
    """registry.json or a request does not fit the schema; the message says what."""


def fingerprint(data):
    """A stable hash of a JSON-serialisable value (sorted keys, no whitespace)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Record:
    """Base of the records: equality and repr by fields; FIELDS lists them."""

    FIELDS = ()

    def __eq__(self, other):
        return type(self) is type(other) and all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % (f, getattr(self, f)) for f in self.FIELDS))

    def replace(self, **changes):
        """A copy with some fields changed (records are not changed in place by the planner)."""
        new = copy.copy(self)
        for key, value in changes.items():
            if key not in self.FIELDS:
                raise AttributeError("%s has no field %s" % (type(self).__name__, key))
            setattr(new, key, value)
        return new


# --------------------------------------------------------------------- hooks

def program_family(attach):
    """What a dispatcher's program looks like at an attach point: 'tc' (tc ingress
    and egress), 'xdp', or 'cilium' (a tc program called from Cilium's slot)."""
    if attach in ("tc_ingress", "tc_egress"):
        return "tc"
    if attach == "xdp":
        return "xdp"
    if attach == "cilium_custom":
        return "cilium"
    raise SchemaError("unknown attach point %r (one of %s)" % (attach, ", ".join(ATTACH_POINTS)))


class FunctionRef(Record):
    """A plugin function: a dispatcher's main."""

    FIELDS = ("plugin", "function")

    def __init__(self, plugin, function):
        self.plugin = plugin
        self.function = function

    @classmethod
    def from_json(cls, data):
        return cls(data["plugin"], data["function"]) if data else None

    def to_json(self):
        return {"plugin": self.plugin, "function": self.function}


class Hook(Record):
    """One plugin function bound to the pre or post hook of a dispatcher."""

    FIELDS = ("plugin", "function", "hook", "constraints", "priority", "verdict")

    def __init__(self, plugin, function, hook=DEFAULT_HOOK, constraints=(), priority=DEFAULT_PRIORITY,
                 verdict=DEFAULT_VERDICT):
        self.plugin = plugin
        self.function = function
        self.hook = hook
        self.constraints = [dict(c) for c in constraints]
        self.priority = priority
        self.verdict = verdict  # one of VERDICTS; matters for entry programs only

    @classmethod
    def normalise(cls, item):
        """A hook entry as a task gives it -> a checked Hook: names checked,
        constraints in one form (so both accepted forms compare equal), defaults
        filled in. The one place hooks are normalised."""
        from ansible_collections.ebpf.datapath.plugins.module_utils.chain import normalize_constraint
        from ansible_collections.ebpf.datapath.plugins.module_utils.naming import check_name
        check_name(item["plugin"], "plugin")
        check_name(item["function"], "function")
        constraints = []
        for raw in item.get("constraints") or []:
            c = normalize_constraint(raw, owner=item["plugin"])
            constraints.append({"order": c.order, "plugin": c.plugin})
        priority = item.get("priority")
        hook = cls(item["plugin"], item["function"], item.get("hook") or DEFAULT_HOOK, constraints,
                   DEFAULT_PRIORITY if priority is None else priority, item.get("verdict") or DEFAULT_VERDICT)
        hook.validate()
        return hook

    def validate(self, where=""):
        owner = "%shook %s.%s" % (where + " " if where else "", self.plugin, self.function)
        if self.hook not in HOOKS:
            raise SchemaError("%s: hook must be one of %s, got %r" % (owner, ", ".join(HOOKS), self.hook))
        check_range("priority", self.priority, owner)
        if self.verdict not in VERDICTS:
            raise SchemaError("%s: verdict must be one of %s, got %r" % (owner, ", ".join(VERDICTS), self.verdict))

    @property
    def key(self):
        """Hooks are kept sorted by this, so equal sets compare equal."""
        return (self.hook, self.plugin, self.function)

    @classmethod
    def from_json(cls, data):
        return cls(data["plugin"], data["function"], data.get("hook", DEFAULT_HOOK), data.get("constraints") or [],
                   data.get("priority", DEFAULT_PRIORITY), data.get("verdict", DEFAULT_VERDICT))

    def to_json(self):
        out = {"plugin": self.plugin, "function": self.function, "hook": self.hook,
               "constraints": [dict(c) for c in self.constraints], "priority": self.priority}
        if self.verdict != DEFAULT_VERDICT:  # records of hooks without it stay as they were
            out["verdict"] = self.verdict
        return out


def sorted_hooks(hooks):
    return sorted(hooks, key=lambda h: h.key)


class Chain(Record):
    """The solved order of hook functions: (plugin, function) pairs per hook."""

    FIELDS = ("pre", "post")

    def __init__(self, pre=(), post=()):
        self.pre = [tuple(x) for x in pre]
        self.post = [tuple(x) for x in post]

    def plugins(self, main=None):
        """The plugins this chain (and main) uses, sorted: computed here only."""
        names = set(p for p, _function in self.pre + self.post)
        if main is not None:
            names.add(main.plugin)
        return sorted(names)

    @classmethod
    def from_json(cls, data):
        data = data or {}
        return cls(data.get("pre", []), data.get("post", []))

    def to_json(self):
        return {"pre": [list(x) for x in self.pre], "post": [list(x) for x in self.post]}


# ------------------------------------------------------------------ plugins

class Plugin(Record):
    """A plugin's code on the host: its two objects (plain and namespaced, by
    sha256 in the object store), its functions, maps and link-mode symbols."""

    FIELDS = ("name", "source", "cflags", "include_dirs", "plain_sha256", "link_sha256", "functions", "maps",
              "link_symbols", "link_maps", "entries", "link_entries", "prog_arrays", "config", "config_data")

    def __init__(self, name, source, cflags, include_dirs, plain_sha256, link_sha256, functions, maps,
                 link_symbols, link_maps, entries=None, link_entries=(), prog_arrays=(), config=None,
                 config_data=None):
        self.name = name
        self.source = dict(source)  # {"src": path} or {"object": path}, and "sha256"
        self.cflags = list(cflags)
        self.include_dirs = list(include_dirs)
        self.plain_sha256 = plain_sha256
        self.link_sha256 = link_sha256
        self.functions = dict(functions)  # name -> {"params": [C types], "ret": C type}
        self.maps = list(maps)
        self.link_symbols = dict(link_symbols)  # function -> symbol in the namespaced object
        self.link_maps = dict(link_maps)  # map name in the namespaced object -> declared name
        # Entry programs (functions under SEC("tc"), SEC("xdp") ...): function ->
        # {"section": ELF section, "family": "tc" | "xdp" | None (not a packet program)}.
        self.entries = dict(entries or {})
        # The entry programs the namespaced object has as plain functions, so a
        # linked dispatcher can call them (source plugins; see plugin_store).
        self.link_entries = sorted(link_entries)
        # Maps of type BPF_MAP_TYPE_PROG_ARRAY: the plugin's tail-call targets
        # are loaded with every object that runs its code (plugin_load.tail_call_targets).
        self.prog_arrays = sorted(prog_arrays)
        # Settings (datapath_plugin's config): as given, and as the bytes every
        # load writes into the plugin's globals (plugin_config): variable -> hex.
        self.config = dict(config or {})
        self.config_data = dict(config_data or {})

    def with_config(self, config, config_data):
        """This record with other settings."""
        data = self.to_json()
        data.update(config=dict(config or {}), config_data=dict(config_data or {}))
        return Plugin.from_json(data)

    # Read access by field name, for callers written against the JSON form
    # (the datapath_plugin module, the benchmarks).
    def __getitem__(self, key):
        if key not in self.FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key, default=None):
        return getattr(self, key) if key in self.FIELDS else default

    @property
    def objects(self):
        """The sha256 digests of the objects this plugin keeps in the store."""
        return sorted(set([self.plain_sha256, self.link_sha256]))

    def same_build(self, other):
        """Same code and build options: nothing to install again."""
        return other is not None and all(getattr(self, f) == getattr(other, f) for f in (
            "plain_sha256", "link_sha256", "source", "cflags", "include_dirs", "config_data"))

    @classmethod
    def from_json(cls, data):
        return cls(data["name"], data["source"], data.get("cflags", []), data.get("include_dirs", []),
                   data["plain_sha256"], data["link_sha256"], data.get("functions", {}), data.get("maps", []),
                   data.get("link_symbols", {}), data.get("link_maps", {}), data.get("entries", {}),
                   data.get("link_entries", []), data.get("prog_arrays", []), data.get("config", {}),
                   data.get("config_data", {}))

    def to_json(self):
        return dict((f, copy.deepcopy(getattr(self, f))) for f in self.FIELDS)


# ------------------------------------------------------------- attachments

class Attachment(Record):
    """Base of the attachment records: what holds a dispatcher's program at its
    attach point. Each backend owns one subclass (BACKENDS maps the ``backend``
    name to it) and is the only place that builds it."""

    BACKEND = None

    @classmethod
    def from_json(cls, data):
        if not data:
            return None
        kind = BACKEND_RECORDS.get(data.get("backend"))
        if kind is None:
            raise SchemaError("unknown attachment backend %r in the registry" % (data.get("backend"),))
        return kind(**dict((f, data.get(f)) for f in kind.FIELDS if f != "backend"))

    def to_json(self):
        out = dict((f, getattr(self, f)) for f in self.FIELDS)
        out["backend"] = self.BACKEND
        return out

    @property
    def backend(self):
        return self.BACKEND

    def with_program(self, prog_id, prog_name=None):
        return self.replace(prog_id=prog_id, prog_name=prog_name if prog_name is not None else self.prog_name)


class TcxAttachment(Attachment):
    """A tcx bpf_link pinned at link_pin."""

    BACKEND = "tcx"
    FIELDS = ("interface", "netns", "ifindex", "attach_type", "link_id", "link_pin", "prog_id", "prog_name")

    def __init__(self, interface, netns, ifindex, attach_type, link_id, link_pin, prog_id, prog_name):
        self.interface, self.netns, self.ifindex = interface, netns, ifindex
        self.attach_type, self.link_id, self.link_pin = attach_type, link_id, link_pin
        self.prog_id, self.prog_name = prog_id, prog_name


class XdpAttachment(Attachment):
    """An XDP bpf_link pinned at link_pin."""

    BACKEND = "xdp_link"
    FIELDS = ("interface", "netns", "ifindex", "xdp_mode", "link_id", "link_pin", "prog_id", "prog_name")

    def __init__(self, interface, netns, ifindex, xdp_mode, link_id, link_pin, prog_id, prog_name):
        self.interface, self.netns, self.ifindex = interface, netns, ifindex
        self.xdp_mode, self.link_id, self.link_pin = xdp_mode, link_id, link_pin
        self.prog_id, self.prog_name = prog_id, prog_name


class ClsactAttachment(Attachment):
    """A cls_bpf filter (direct action) under the clsact qdisc."""

    BACKEND = "clsact"
    FIELDS = ("interface", "netns", "ifindex", "parent", "priority", "handle", "protocol", "created_qdisc",
              "prog_id", "prog_name")

    def __init__(self, interface, netns, ifindex, parent, priority, handle, protocol, created_qdisc, prog_id,
                 prog_name):
        self.interface, self.netns, self.ifindex = interface, netns, ifindex
        self.parent, self.priority, self.handle, self.protocol = parent, priority, handle, protocol
        self.created_qdisc = bool(created_qdisc)
        self.prog_id, self.prog_name = prog_id, prog_name

    link_pin = None


class CiliumAttachment(Attachment):
    """A slot of Cilium's per-endpoint custom-call prog array."""

    BACKEND = "cilium_prog_array"
    FIELDS = ("map_path", "endpoint", "custom_hook", "key", "prog_id", "prog_name")

    def __init__(self, map_path, endpoint, custom_hook, key, prog_id, prog_name):
        self.map_path, self.endpoint, self.custom_hook, self.key = map_path, endpoint, custom_hook, key
        self.prog_id, self.prog_name = prog_id, prog_name

    link_pin = None


BACKEND_RECORDS = dict((c.BACKEND, c) for c in (TcxAttachment, XdpAttachment, ClsactAttachment, CiliumAttachment))


# -------------------------------------------------------------- generations

class Pending(Record):
    """The write-ahead record: a program about to be put at the attach point.

    Saved before the swap; a run killed between the swap and its save leaves
    it, and the next run adopts the attach point running exactly that program
    (see planner.KernelFacts.adoptable). ``old_attachment`` is the attachment
    being replaced when the dispatcher moves to another attach point, so a run
    killed between attaching the new place and releasing the old one still
    releases the old one."""

    FIELDS = ("generation", "prog_id", "old_attachment", "old_where")

    def __init__(self, generation, prog_id, old_attachment=None, old_where=None):
        self.generation = generation
        self.prog_id = prog_id
        self.old_attachment = old_attachment
        self.old_where = old_where  # the old request's WHERE fields, to reach the old attach point

    @classmethod
    def from_json(cls, data):
        if not data:
            return None
        return cls(data["generation"], data["prog_id"], Attachment.from_json(data.get("old_attachment")),
                   data.get("old_where"))

    def to_json(self):
        out = {"generation": self.generation, "prog_id": self.prog_id}
        if self.old_attachment is not None:
            out["old_attachment"] = self.old_attachment.to_json()
            out["old_where"] = dict(self.old_where or {})
        return out


class Generation(Record):
    """One applied chain of a dispatcher, pinned at prog_pin.

    build: the inputs that fully decide the build (fingerprinted: the
    dispatcher's identity for idempotence); request: the hooks, main and
    strictness it was built from, so a rollback restores them."""

    FIELDS = ("number", "fingerprint", "build", "chain", "prog_id", "prog_pin", "request")

    def __init__(self, number, fingerprint, build, chain, prog_id, prog_pin, request):
        self.number = number
        self.fingerprint = fingerprint
        self.build = build  # dict, see planner.build_inputs
        self.chain = chain
        self.prog_id = prog_id
        self.prog_pin = prog_pin
        self.request = request  # dict: hooks, main, strict_constraints (or None: unknown)

    @property
    def mode(self):
        return (self.build or {}).get("mode")

    def plugins(self):
        """The plugins this generation needs (its request's hooks and main)."""
        request = self.request or {}
        names = set(h["plugin"] for h in request.get("hooks", []))
        if request.get("main"):
            names.add(request["main"]["plugin"])
        return names

    @classmethod
    def from_json(cls, data):
        return cls(data["number"], data["fingerprint"], data["build"], Chain.from_json(data["chain"]),
                   data.get("prog_id"), data["prog_pin"], data.get("request"))

    def to_json(self):
        out = {"number": self.number, "fingerprint": self.fingerprint, "build": copy.deepcopy(self.build),
               "chain": self.chain.to_json(), "prog_id": self.prog_id, "prog_pin": self.prog_pin}
        if self.request is not None:
            out["request"] = copy.deepcopy(self.request)
        return out


# -------------------------------------------------------------- dispatchers

class DispatcherRequest(Record):
    """What an operator asks of one dispatcher: where, how, and which hooks."""

    # The fields that decide where the dispatcher is attached; a change of any
    # of them moves it (attach at the new place, then release the old one).
    WHERE = ("attach", "interface", "netns", "tc_backend", "endpoint", "custom_hook", "cilium_globals")
    FIELDS = WHERE + ("mode", "main", "position", "strict_constraints", "keep_generations", "hooks", "stats")

    def __init__(self, attach, interface=None, netns=None, tc_backend=DEFAULT_TC_BACKEND, endpoint=None,
                 custom_hook=None, cilium_globals=None, mode=DEFAULT_MODE, main=None, position=None,
                 strict_constraints=False, keep_generations=DEFAULT_KEEP_GENERATIONS, hooks=(), stats=False):
        self.attach = attach
        self.interface = interface
        self.netns = netns or None
        self.tc_backend = tc_backend or DEFAULT_TC_BACKEND
        self.endpoint = endpoint
        self.custom_hook = custom_hook
        self.cilium_globals = cilium_globals
        self.mode = mode or DEFAULT_MODE
        self.main = main
        self.position = dict(position) if position else None
        self.strict_constraints = bool(strict_constraints)
        self.keep_generations = DEFAULT_KEEP_GENERATIONS if keep_generations is None else keep_generations
        self.hooks = sorted_hooks(hooks)
        self.stats = bool(stats)  # per-plugin statistics in the dispatcher (runs and verdicts per CPU)

    def validate(self, name=""):
        owner = "dispatcher '%s'" % name if name else ""
        if self.attach not in ATTACH_POINTS:
            raise SchemaError("%s: attach must be one of %s, got %r" % (owner, ", ".join(ATTACH_POINTS), self.attach))
        if self.mode not in MODES:
            raise SchemaError("%s: mode must be one of %s, got %r" % (owner, ", ".join(MODES), self.mode))
        if self.tc_backend not in TC_BACKENDS:
            raise SchemaError("%s: tc_backend must be one of %s, got %r"
                              % (owner, ", ".join(TC_BACKENDS), self.tc_backend))
        check_range("keep_generations", self.keep_generations, owner)
        if self.attach == "cilium_custom":
            check_range("endpoint", self.endpoint, owner)
            if self.custom_hook not in CILIUM_CUSTOM_HOOKS:
                raise SchemaError("%s: custom_hook must be one of %s, got %r"
                                  % (owner, ", ".join(sorted(CILIUM_CUSTOM_HOOKS)), self.custom_hook))
            check_range("custom_hook", CILIUM_CUSTOM_HOOKS[self.custom_hook], owner)
        elif not self.interface:
            raise SchemaError("%s: attach point %s needs an interface" % (owner, self.attach))
        for key in ("priority", "prog_id"):
            if self.position and self.position.get(key) is not None:
                check_range("position." + key, self.position[key], owner)
        for hook in self.hooks:
            hook.validate(owner)
        return self

    @classmethod
    def from_spec(cls, spec, old=None):
        """A request from a module's options; hooks None keeps the old hooks
        (hooks managed by datapath_hook tasks)."""
        hooks = spec.get("hooks")
        if hooks is None:
            hooks = old.hooks if old is not None else []
        else:
            hooks = [h if isinstance(h, Hook) else Hook.normalise(h) for h in hooks]
        main = spec.get("main")
        if main is not None and not isinstance(main, FunctionRef):
            main = FunctionRef(main["plugin"], main["function"])
        cilium = spec.get("attach") == "cilium_custom"
        return cls(
            attach=spec.get("attach"), interface=spec.get("interface"), netns=spec.get("netns"),
            tc_backend=spec.get("tc_backend"), endpoint=spec.get("endpoint"), custom_hook=spec.get("custom_hook"),
            cilium_globals=(spec.get("cilium_globals") or DEFAULT_CILIUM_GLOBALS) if cilium else None,
            mode=spec.get("mode"), main=main, position=spec.get("position"),
            strict_constraints=spec.get("strict_constraints", False), keep_generations=spec.get("keep_generations"),
            hooks=hooks, stats=spec.get("stats", False))

    def where(self):
        return tuple(getattr(self, f) for f in self.WHERE)

    def where_json(self):
        return dict((f, getattr(self, f)) for f in self.WHERE)

    def plugins(self):
        """The plugins the request names (hooks and main)."""
        names = set(h.plugin for h in self.hooks)
        if self.main is not None:
            names.add(self.main.plugin)
        return names

    def generation_request(self):
        """What a generation records of this request (for rollback)."""
        out = {"hooks": [h.to_json() for h in self.hooks], "main": self.main.to_json() if self.main else None,
               "strict_constraints": self.strict_constraints}
        if self.stats:  # only then: records of generations without statistics stay as they were
            out["stats"] = True
        return out

    def with_generation_request(self, request):
        """This request with the hooks, main and strictness a generation recorded."""
        return self.replace(hooks=sorted_hooks(Hook.from_json(h) for h in request.get("hooks", [])),
                            main=FunctionRef.from_json(request.get("main")),
                            strict_constraints=bool(request.get("strict_constraints", False)),
                            stats=bool(request.get("stats", False)))

    @classmethod
    def from_json(cls, data):
        return cls(data["attach"], data.get("interface"), data.get("netns"), data.get("tc_backend"),
                   data.get("endpoint"), data.get("custom_hook"), data.get("cilium_globals"), data.get("mode"),
                   FunctionRef.from_json(data.get("main")), data.get("position"),
                   data.get("strict_constraints", False), data.get("keep_generations"),
                   [Hook.from_json(h) for h in data.get("hooks", [])], data.get("stats", False))

    def to_json(self):
        out = dict((f, getattr(self, f)) for f in self.WHERE)
        out.update({"mode": self.mode, "main": self.main.to_json() if self.main else None,
                    "position": copy.deepcopy(self.position), "strict_constraints": self.strict_constraints,
                    "keep_generations": self.keep_generations, "hooks": [h.to_json() for h in self.hooks]})
        if self.stats:  # only then: registries written before statistics read back byte for byte
            out["stats"] = True
        return out


class Dispatcher(Record):
    """A dispatcher as recorded: its request and what runs.

    generation: the number of the running generation (None before the first);
    high_water: the highest generation number ever used at this dispatcher, so
    numbers strictly increase through rollback, restore and moves and are
    never used twice."""

    FIELDS = ("name", "request", "mode_effective", "chain", "generation", "generations", "attachment", "pending",
              "high_water", "inline_refused")

    def __init__(self, name, request, mode_effective=None, chain=None, generation=None, generations=(),
                 attachment=None, pending=None, high_water=0, inline_refused=None):
        self.name = name
        self.request = request
        self.mode_effective = mode_effective
        self.chain = chain if chain is not None else Chain()
        self.generation = generation
        self.generations = list(generations)
        self.attachment = attachment
        self.pending = pending
        self.high_water = max([high_water or 0, generation or 0] + [g.number for g in self.generations])
        # mode auto: the inline build that failed ({"fingerprint", "reason"}), so
        # a rerun with the same inputs picks the next mode without trying again.
        self.inline_refused = dict(inline_refused) if inline_refused else None

    def current_generation(self):
        for gen in self.generations:
            if gen.number == self.generation:
                return gen
        return None

    def kept(self, number):
        for gen in self.generations:
            if gen.number == number:
                return gen
        return None

    def next_generation(self):
        return self.high_water + 1

    @classmethod
    def from_json(cls, data):
        return cls(data["name"], DispatcherRequest.from_json(data), data.get("mode_effective"),
                   Chain.from_json(data.get("chain")), data.get("generation"),
                   [Generation.from_json(g) for g in data.get("generations", [])],
                   Attachment.from_json(data.get("attachment")), Pending.from_json(data.get("pending")),
                   data.get("high_water", 0), data.get("inline_refused"))

    def to_json(self):
        out = self.request.to_json()
        out.update({"name": self.name, "mode_effective": self.mode_effective, "chain": self.chain.to_json(),
                    "generation": self.generation, "generations": [g.to_json() for g in self.generations],
                    "attachment": self.attachment.to_json() if self.attachment else None,
                    "high_water": self.high_water})
        if self.pending is not None:
            out["pending"] = self.pending.to_json()
        if self.inline_refused:
            out["inline_refused"] = dict(self.inline_refused)
        return out


# ------------------------------------------------------------------ registry

class RegistryData(Record):
    """The whole recorded state of a host."""

    FIELDS = ("plugins", "dispatchers")

    def __init__(self, plugins=None, dispatchers=None):
        self.plugins = dict(plugins or {})
        self.dispatchers = dict(dispatchers or {})

    def hooks_using_plugin(self, plugin):
        """(dispatcher name, Hook) pairs that reference plugin; main as hook 'main'."""
        found = []
        for dname, disp in sorted(self.dispatchers.items()):
            for hook in disp.request.hooks:
                if hook.plugin == plugin:
                    found.append((dname, hook))
            main = disp.request.main
            if main is not None and main.plugin == plugin:
                found.append((dname, Hook(main.plugin, main.function, "main")))
        return found

    def dispatchers_using(self, plugin):
        return sorted(set(d for d, _hook in self.hooks_using_plugin(plugin)))

    def referenced_objects(self):
        """Every object digest the registry still needs: installed plugins and
        every kept generation (rollback targets included)."""
        keep = set()
        for plugin in self.plugins.values():
            keep.update(plugin.objects)
        for disp in self.dispatchers.values():
            for gen in disp.generations:
                for digests in ((gen.build or {}).get("objects") or {}).values():
                    keep.update(digests)
        return keep


def registry_from_json(data, path="registry.json"):
    """Read (and migrate) a registry; refuse one newer than this code."""
    if not isinstance(data, dict):
        raise SchemaError("%s does not hold a JSON object; move it away and rerun to rebuild" % path)
    version = data.get("schema_version", data.get("version"))
    if version == 1:
        data = _migrate_1_to_2(data)
    elif isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise SchemaError("%s has schema_version %d, written by a newer version of ebpf.datapath; this version "
                          "reads up to %d. Upgrade the collection on the controller (or restore the registry "
                          "this version wrote)" % (path, version, SCHEMA_VERSION))
    elif version != SCHEMA_VERSION:
        raise SchemaError("%s has an unknown schema_version %r (this version reads 1 to %d)"
                          % (path, version, SCHEMA_VERSION))
    try:
        return RegistryData(
            dict((n, Plugin.from_json(p)) for n, p in data.get("plugins", {}).items()),
            dict((n, Dispatcher.from_json(d)) for n, d in data.get("dispatchers", {}).items()))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SchemaError("%s does not fit schema %d (%s: %s); move it away and rerun to rebuild"
                          % (path, SCHEMA_VERSION, type(exc).__name__, exc))


def registry_to_json(registry):
    return {"schema_version": SCHEMA_VERSION, "version": SCHEMA_VERSION,
            "plugins": dict((n, p.to_json()) for n, p in registry.plugins.items()),
            "dispatchers": dict((n, d.to_json()) for n, d in registry.dispatchers.items())}


def _migrate_1_to_2(data):
    """Schema 1 -> 2: generation recipe/spec renamed build/request, the
    attachment's kind dropped, high_water from the numbers still on record."""
    data = copy.deepcopy(data)
    for disp in data.get("dispatchers", {}).values():
        numbers = [disp.get("generation") or 0]
        for gen in disp.get("generations", []):
            gen["build"] = gen.pop("recipe", None) or {}
            gen["request"] = gen.pop("spec", None)
            numbers.append(gen["number"])
        if disp.get("attachment"):
            disp["attachment"].pop("kind", None)
        pending = disp.get("pending")
        numbers.append((pending or {}).get("generation") or 0)
        disp["high_water"] = max(numbers)
    data["schema_version"] = SCHEMA_VERSION
    return data
