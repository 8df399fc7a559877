"""The one plug-in mechanism (`healthswarm.plugins.Registry`): built-ins imported on first use, the
decorator, entry points from installed packages, and the errors a user sees when a name is unknown or
a third-party plug-in is broken. The end-to-end proof through the real CLI is tests/test_plugins_cli.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from healthswarm.bus import BusError
from healthswarm.buses import BUSES, open_registered_bus
from healthswarm.detect.sensor import SensorAlertDetector
from healthswarm.detect.suite import DETECTORS, SuiteSpec, build_suite
from healthswarm.errors import InputError, Location
from healthswarm.ingest.formats import FORMATS, Format
from healthswarm.plugins import PluginError, Registry, UnknownPluginError, instance
from healthswarm.respond.actions import ACTIONS
from healthswarm.swarm.federated.strategies import STRATEGIES
from plugin_package import write_distribution


class Widget:
    name = "gear"


class OtherWidget:
    name = "gear"


def fresh(group: str = "healthswarm.test-widgets", builtins: dict[str, str] | None = None) -> Registry:
    return Registry("widget", group, builtins, make=instance, expect=object)


def test_a_builtin_is_imported_on_first_use_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lazy_widgets.py").write_text("class Cog:\n    name = 'cog'\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = fresh(builtins={"cog": "lazy_widgets:Cog"})
    assert registry.names() == ["cog"] and "cog" in registry
    assert "lazy_widgets" not in sys.modules
    assert type(registry.get("cog")).__name__ == "Cog"
    assert "lazy_widgets" in sys.modules
    monkeypatch.delitem(sys.modules, "lazy_widgets")


def test_the_decorator_registers_and_a_second_plugin_of_the_same_name_is_refused() -> None:
    registry = fresh()
    assert registry.register(Widget) is Widget
    registry.register(Widget)  # the same class again (a module imported twice) is no rival
    assert isinstance(registry.get("gear"), Widget) and list(registry) == ["gear"]
    with pytest.raises(PluginError, match=r"widget 'gear' registered twice: by test_plugins\.Widget and by "
                                          r"test_plugins\.OtherWidget"):
        registry.register(OtherWidget)
    registry.register(name="sprocket")(OtherWidget)
    assert registry.names() == ["gear", "sprocket"]


def test_an_unknown_name_lists_what_exists() -> None:
    registry = fresh()
    registry.register(Widget)
    registry.register(name="cog")(OtherWidget)
    with pytest.raises(UnknownPluginError) as caught:
        registry.get("nope", Location("config.toml", 3, "widget"))
    assert str(caught.value) == "config.toml:3: widget: unknown widget 'nope' (expected one of cog, gear)"
    assert isinstance(caught.value, InputError) and len(caught.value.problems) == 1
    # a KeyError too; without a location its message is bare, for callers (`--format`) that put theirs in front
    with pytest.raises(KeyError) as bare:
        registry["nope"]
    assert bare.value.args[0] == "unknown widget 'nope' (expected one of cog, gear)"
    assert "nope" not in registry


def test_an_entry_point_adds_a_plugin_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_distribution(tmp_path / "one", "widgets-one", {"widgets_one": "class Cog:\n    name = 'cog'\n"},
                       {"healthswarm.test-widgets": {"cog": "widgets_one:Cog"}})
    monkeypatch.syspath_prepend(str(tmp_path / "one"))
    registry = fresh()
    assert registry.names() == ["cog"]
    assert type(registry.get("cog")).__name__ == "Cog"
    # installed after the registry read the group: read once per process, so not seen until a restart
    write_distribution(tmp_path / "two", "widgets-two", {"widgets_two": "class Pin:\n    name = 'pin'\n"},
                       {"healthswarm.test-widgets": {"pin": "widgets_two:Pin"}})
    monkeypatch.syspath_prepend(str(tmp_path / "two"))
    assert registry.names() == ["cog"]
    assert fresh().names() == ["cog", "pin"]


def test_a_broken_entry_point_is_named_in_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_distribution(tmp_path, "broken-widgets", {"broken_widgets": "import no_such_module_anywhere\n",
                                                    "odd_widgets": "NUMBER = 7\n"},
                       {"healthswarm.test-widgets": {"bad": "broken_widgets:Cog", "odd": "odd_widgets:NUMBER"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry = Registry("format", "healthswarm.test-widgets", make=instance, expect=Format)
    assert registry.names() == ["bad", "odd"]
    with pytest.raises(PluginError) as caught:
        registry.get("bad")
    assert str(caught.value) == ("entry point 'bad = broken_widgets:Cog' (group healthswarm.test-widgets, package "
                                 "broken-widgets 1.0) cannot be loaded: ModuleNotFoundError: No module named "
                                 "'no_such_module_anywhere'")
    with pytest.raises(PluginError, match=r"format from entry point 'odd = odd_widgets:NUMBER' .* is int, not a "
                                          r"Format"):
        registry.get("odd")


def test_a_decorated_plugin_cannot_take_a_builtin_name() -> None:
    registry = fresh(builtins={"gear": "fractions:Fraction"})
    with pytest.raises(PluginError, match=r"test_plugins\.Widget takes the name of the built-in widget 'gear'"):
        registry.register(Widget)


def test_an_entry_point_cannot_take_a_builtin_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_distribution(tmp_path, "shadow", {"shadow_widgets": "class Cog:\n    name = 'cog'\n"},
                       {"healthswarm.test-widgets": {"cog": "shadow_widgets:Cog"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = fresh(builtins={"cog": "fractions:Fraction"})
    with pytest.raises(PluginError, match=r"entry point 'cog = shadow_widgets:Cog' .* takes the name of the "
                                          r"built-in widget 'cog'"):
        registry.names()


def test_every_plugin_kind_has_its_registry_and_entry_point_group() -> None:
    assert (FORMATS.group, DETECTORS.group, ACTIONS.group, BUSES.group, STRATEGIES.group) == (
        "healthswarm.formats", "healthswarm.detectors", "healthswarm.actions", "healthswarm.buses",
        "healthswarm.strategies")
    assert {"suricata", "evtx", "hl7", "dicom"} <= set(FORMATS)
    assert DETECTORS.names()[:6] == ["sigma", "sensor", "baseline", "clinical", "privacy", "models"]
    assert {"isolate-host", "watchlist-add", "notify-email"} <= set(ACTIONS)
    assert ACTIONS["isolate-host"].disruptive and not ACTIONS["disable-account"].disruptive
    assert set(STRATEGIES) >= {"fedavg", "trimmed-mean", "krum"}
    assert set(BUSES) >= {"memory", "nats"}


def test_a_suite_leaves_out_the_detectors_its_spec_disables() -> None:
    kinds = {type(d) for d in build_suite(SuiteSpec(baseline=None, clinical=False)).detectors}
    assert SensorAlertDetector in kinds
    suite = build_suite(SuiteSpec(baseline=None, clinical=False, disabled=frozenset({"sensor", "sigma"})))
    assert suite.detectors == [] and suite.ruleset.rules == []
    with pytest.raises(InputError, match="disabled: sensr: unknown detector 'sensr'"):
        build_suite(SuiteSpec(disabled=frozenset({"sensr"})))


def test_buses_by_scheme() -> None:
    bus = open_registered_bus("memory")
    try:
        assert type(bus).__name__ == "MemoryBus"
    finally:
        bus.close()
    for url in ("kafka://broker:9092", "memory://x", "nats"):
        with pytest.raises(BusError, match=r"expected 'memory' or nats://host:port"):
            open_registered_bus(url)
