# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry schema: migration of a registry the previous release wrote,
refusal of a newer one, JSON round trips, and every numeric field's range."""

import copy
import json
import os

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils.defaults import RANGES, check_range
from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import (
    SCHEMA_VERSION, CiliumAttachment, ClsactAttachment, DispatcherRequest, Hook, SchemaError, TcxAttachment,
    XdpAttachment, fingerprint, registry_from_json, registry_to_json)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def v1():
    with open(os.path.join(DATA, "registry-v1.json")) as handle:
        return json.load(handle)


def test_a_registry_of_the_previous_release_is_read_with_every_backend():
    registry = registry_from_json(v1())
    assert sorted(registry.plugins) == ["counter", "verdicts"]
    kinds = dict((n, type(d.attachment)) for n, d in registry.dispatchers.items())
    assert kinds == {"tcx_in": TcxAttachment, "cls_out": ClsactAttachment, "xdp0": XdpAttachment,
                     "cil": CiliumAttachment}
    cls_out = registry.dispatchers["cls_out"]
    # position applies to a first attachment only: the filter stayed where generation 1 put it.
    assert cls_out.request.position == {"priority": 7} and cls_out.attachment.priority == 1
    assert registry.dispatchers["xdp0"].request.keep_generations == 2
    assert registry.dispatchers["cil"].request.endpoint == 42


def test_migration_keeps_fingerprints_so_an_upgrade_rebuilds_nothing():
    for disp in registry_from_json(v1()).dispatchers.values():
        for gen in disp.generations:
            assert fingerprint(gen.build) == gen.fingerprint
        assert disp.current_generation() is not None


def test_migration_sets_the_high_water_mark_from_every_number_on_record():
    registry = registry_from_json(v1())
    tcx_in = registry.dispatchers["tcx_in"]
    # Rolled back to 1 with 2 kept: the next generation is 3, never 2 again.
    assert (tcx_in.generation, [g.number for g in tcx_in.generations]) == (1, [1, 2])
    assert tcx_in.high_water == 2 and tcx_in.next_generation() == 3


def test_migration_moves_recipe_and_spec_to_build_and_request():
    raw = v1()["dispatchers"]["tcx_in"]["generations"][0]
    gen = registry_from_json(v1()).dispatchers["tcx_in"].generations[0]
    assert gen.build == raw["recipe"] and gen.request == raw["spec"] and gen.mode == "link"


def test_written_registry_round_trips_and_carries_its_version():
    registry = registry_from_json(v1())
    data = json.loads(json.dumps(registry_to_json(registry)))
    assert data["schema_version"] == SCHEMA_VERSION == 2
    # 028bc1a's state.Registry.load refuses any "version" but 1 ("has registry
    # version 2, this collection reads 1"): old code fails clearly, never misreads.
    assert data["version"] == 2
    assert "kind" not in data["dispatchers"]["tcx_in"]["attachment"]
    assert registry_from_json(data) == registry


def test_migration_does_not_change_its_input():
    data = v1()
    before = copy.deepcopy(data)
    registry_from_json(data)
    assert data == before


def test_a_registry_of_a_newer_release_is_refused_with_what_to_do():
    data = registry_to_json(registry_from_json(v1()))
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaError) as err:
        registry_from_json(data, "/var/lib/ebpf-datapath/registry.json")
    text = str(err.value)
    assert "schema_version 3" in text and "newer version of ebpf.datapath" in text and "Upgrade" in text


@pytest.mark.parametrize("data, words", [
    ({"version": "one"}, "unknown schema_version 'one'"),
    ([], "does not hold a JSON object"),
    ({"schema_version": 2, "plugins": {"p": {"name": "p"}}, "dispatchers": {}}, "does not fit schema 2"),
])
def test_registries_that_do_not_fit_are_refused(data, words):
    with pytest.raises(SchemaError) as err:
        registry_from_json(data)
    assert words in str(err.value)


def test_an_unknown_attachment_backend_is_refused():
    data = v1()
    data["dispatchers"]["tcx_in"]["attachment"]["backend"] = "carrier_pigeon"
    with pytest.raises(SchemaError, match="unknown attachment backend 'carrier_pigeon'"):
        registry_from_json(data)


def test_schema_errors_are_datapath_errors():
    assert issubclass(SchemaError, DatapathError)


# ------------------------------------------------------------------ ranges

def test_every_numeric_option_has_a_range():
    assert set(RANGES) >= {"priority", "keep_generations", "endpoint", "custom_hook", "position.priority",
                           "position.prog_id"}
    for option, (low, high) in RANGES.items():
        assert check_range(option, low) == low and check_range(option, high) == high
        for bad in (low - 1, high + 1):
            with pytest.raises(DatapathError) as err:
                check_range(option, bad, "dispatcher 'd'")
            assert str(err.value) == "dispatcher 'd': %s must be between %d and %d, got %d" % (option, low, high, bad)


@pytest.mark.parametrize("value", [True, "5", 2.5, None])
def test_a_range_takes_integers_only(value):
    with pytest.raises(DatapathError, match="priority must be an integer between 0 and 1000"):
        check_range("priority", value)


def request(**kw):
    args = dict(attach="tc_ingress", interface="veth0")
    args.update(kw)
    return DispatcherRequest(**args)


@pytest.mark.parametrize("kw, words", [
    (dict(keep_generations=0), "keep_generations must be between 1 and 100, got 0"),
    (dict(keep_generations=101), "keep_generations must be between 1 and 100, got 101"),
    (dict(attach="cilium_custom", interface=None, endpoint=70000, custom_hook="ipv4_ingress"),
     "endpoint must be between 0 and 65535, got 70000"),
    (dict(attach="cilium_custom", interface=None, endpoint=1, custom_hook="ipv5_ingress"),
     "custom_hook must be one of"),
    (dict(position={"priority": 0}), "position.priority must be between 1 and 65535, got 0"),
    (dict(position={"anchor": "before", "prog_id": 0}), "position.prog_id must be between 1 and 4294967295"),
    (dict(hooks=[Hook("a", "f", priority=1001)]), "hook a.f: priority must be between 0 and 1000, got 1001"),
    (dict(hooks=[Hook("a", "f", hook="middle")]), "hook must be one of pre, post"),
    (dict(mode="bogus"), "mode must be one of auto, link, freplace, inline"),
    (dict(interface=None), "needs an interface"),
])
def test_a_request_validates_its_own_fields(kw, words):
    with pytest.raises(DatapathError) as err:
        request(**kw).validate("d")
    assert words in str(err.value) and "dispatcher 'd'" in str(err.value)


def test_hooks_are_normalised_in_one_place():
    ours = Hook.normalise({"plugin": "b", "function": "f", "constraints": [{"anchor": "before", "plugin": "a"}],
                           "priority": None, "hook": None})
    ciliums = Hook.normalise({"plugin": "b", "function": "f", "constraints": [{"order": "BEFORE", "plugin": "a"}]})
    assert ours == ciliums == Hook("b", "f", "pre", [{"order": "before", "plugin": "a"}], 50)
    with pytest.raises(DatapathError, match="priority must be between 0 and 1000"):
        Hook.normalise({"plugin": "b", "function": "f", "priority": -1})


def test_a_request_from_module_options_keeps_the_hooks_a_hook_task_set():
    old = request(hooks=[Hook("a", "f")])
    spec = {"name": "d", "attach": "tc_ingress", "interface": "veth0", "hooks": None, "keep_generations": 3}
    assert DispatcherRequest.from_spec(spec, old).hooks == [Hook("a", "f")]
    assert DispatcherRequest.from_spec(dict(spec, hooks=[]), old).hooks == []
