"""Every detector an agent runs, built from one description: Sigma rules (the bundled healthcare rules
and any others), the sensors' own alerts, per-asset baselines, the clinical protocol analytics and,
when a staff directory is given, patient-privacy monitoring, the trained models named from the
workspace (flow classifier, telemetry, saved baselines; see detect/learn/pipeline.py), and any detector
another package plugs in. The demo, `healthswarm detect` and the scale-out workers build their
detectors here, so they agree on what "detection" means.

Each kind of detector is a factory in the `DETECTORS` registry (`plugins.Registry`, entry-point group
`healthswarm.detectors`): it gets the SuiteSpec and the inventory's assets and returns zero or more
detectors. A plug-in is on unless the spec names it in `disabled`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from healthswarm.detect.base import Detector
from healthswarm.detect.healthcare import protocol_detectors
from healthswarm.detect.learn.asset_baseline import AssetBaseline, BaselineConfig
from healthswarm.detect.learn.detector import ModelDetector
from healthswarm.detect.learn.pipeline import DEFAULT_BUDGET, ModelStats, pipeline_detector
from healthswarm.detect.learn.workspace import load_model
from healthswarm.detect.privacy import PrivacyMonitor, load_directory
from healthswarm.detect.sensor import SensorAlertDetector
from healthswarm.detect.sigma import SigmaDetector, load_rules
from healthswarm.detect.sigma.packs import pack_paths
from healthswarm.detect.sigma.ruleset import RuleSet
from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import Asset
from healthswarm.plugins import PluginError, Registry


@dataclass
class SuiteSpec:
    rules: Sequence[Path] = ()                   # Sigma rule files or folders besides the bundled packs
    healthcare_rules: bool = True
    # bundled rule packs (detect/sigma/packs.py): the healthcare pack alone by default here; `detect` and the
    # agent pass packs.DEFAULT_PACKS (SigmaHQ snapshot, healthswarm pack, healthcare pack)
    packs: Sequence[str] = ("healthcare",)
    placeholders: Mapping[str, Sequence[str]] = field(default_factory=dict)
    baseline: BaselineConfig | None = field(default_factory=BaselineConfig)   # None: no per-asset baselines
    clinical: bool = True                        # HL7 / DICOM / FHIR protocol analytics
    staff: Path | None = None                    # a staff directory turns on patient-privacy monitoring
    cache_dir: Path | None = None                # compiled Sigma rules
    models: Sequence[str] = ()                   # names of trained models in the workspace's models/ folder
    workspace: Path | None = None                # where those models live (required with `models`)
    model_budget: int = DEFAULT_BUDGET           # model alerts per source, class and UTC day
    disabled: frozenset[str] = frozenset()       # detector factories (DETECTORS names) left out


@dataclass
class Suite:
    detectors: list[Detector]
    ruleset: RuleSet  # empty when no rule path was given
    models: list[ModelDetector] = field(default_factory=list)  # the workspace models among `detectors`

    def model_stats(self) -> dict[str, dict[str, object]]:
        """Per model detector: events scored, alerts, suppressed, and skipped events by reason."""
        return {d.name: stats.as_dict() for d in self.models
                if isinstance(stats := getattr(d.model, "stats", None), ModelStats)}


DetectorFactory = Callable[[SuiteSpec, Sequence[Asset]], Iterable[Detector]]

DETECTORS: Registry[DetectorFactory] = Registry("detector", "healthswarm.detectors", {
    name: f"healthswarm.detect.suite:{name}_detectors"
    for name in ("sigma", "sensor", "baseline", "clinical", "privacy", "models")}, expect=Callable)


def register_detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    """Decorator: `factory(spec, assets)` returns the detectors of `name` for that spec (none to stay off)."""
    return DETECTORS.register(name=name)


def build_suite(spec: SuiteSpec, assets: Sequence[Asset] = ()) -> Suite:
    """The detectors of `spec`; a bad staff directory, or a named model that is missing, of another card
    format or of a kind that cannot observe events, raises InputError (file, line, field); so does an
    unknown name in `spec.disabled`."""
    for name in sorted(spec.disabled):
        DETECTORS.get(name, Location("disabled", field=name))
    built = {name: _detectors_of(name, spec, assets) for name in DETECTORS.names() if name not in spec.disabled}
    ruleset = next((d.ruleset for d in built.get("sigma", []) if isinstance(d, SigmaDetector)), RuleSet())
    # the ruleset is the suite's even when no rule compiled (its problems say why); the detector is not
    detectors = [d for group in built.values() for d in group
                 if not (isinstance(d, SigmaDetector) and not (d.ruleset.rules or d.ruleset.correlations))]
    models = [d for d in built.get("models", []) if isinstance(d, ModelDetector)]
    return Suite(detectors, ruleset, models)


def _detectors_of(name: str, spec: SuiteSpec, assets: Sequence[Asset]) -> list[Detector]:
    made = list(DETECTORS.get(name)(spec, assets))
    for detector in made:
        if not isinstance(detector, Detector):
            raise PluginError(f"detector {name!r} made a {type(detector).__name__}, not a Detector "
                              "(name, detect(event), flush())")
    return made


def sigma_detectors(spec: SuiteSpec, assets: Sequence[Asset]) -> list[Detector]:
    names = [p for p in dict.fromkeys(spec.packs) if spec.healthcare_rules or p != "healthcare"]
    paths = [*spec.rules, *pack_paths(names, spec.workspace)]
    return [SigmaDetector(load_rules(paths, cache_dir=spec.cache_dir, placeholders=spec.placeholders))]


def sensor_detectors(spec: SuiteSpec, assets: Sequence[Asset]) -> list[Detector]:
    return [SensorAlertDetector()]


def baseline_detectors(spec: SuiteSpec, assets: Sequence[Asset]) -> list[Detector]:
    return [] if spec.baseline is None else [ModelDetector(AssetBaseline(spec.baseline, assets))]


def clinical_detectors(spec: SuiteSpec, assets: Sequence[Asset]) -> list[Detector]:
    return list(protocol_detectors()) if spec.clinical else []


def privacy_detectors(spec: SuiteSpec, assets: Sequence[Asset]) -> list[Detector]:
    return [] if spec.staff is None else [PrivacyMonitor(load_directory(spec.staff))]


def models_detectors(spec: SuiteSpec, assets: Sequence[Asset]) -> list[Detector]:
    if not spec.models:
        return []
    if spec.workspace is None:
        raise InputError(Problem(Location("--model"), "models named without a workspace", "a workspace folder"))
    # dict.fromkeys: naming a model twice would score every event twice
    return [ModelDetector(pipeline_detector(load_model(spec.workspace, name), spec.model_budget), name)
            for name in dict.fromkeys(spec.models)]
