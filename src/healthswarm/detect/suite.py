"""Every detector an agent runs, built from one description: Sigma rules (the bundled healthcare rules
and any others), the sensors' own alerts, per-asset baselines, the clinical protocol analytics and,
when a staff directory is given, patient-privacy monitoring, and the trained models named from the
workspace (flow classifier, telemetry, saved baselines; see detect/learn/pipeline.py). The demo,
`healthswarm detect` and the scale-out workers build their detectors here, so they agree on what
"detection" means."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


@dataclass
class Suite:
    detectors: list[Detector]
    ruleset: RuleSet  # empty when no rule path was given
    models: list[ModelDetector] = field(default_factory=list)  # the workspace models among `detectors`

    def model_stats(self) -> dict[str, dict[str, object]]:
        """Per model detector: events scored, alerts, suppressed, and skipped events by reason."""
        return {d.name: stats.as_dict() for d in self.models
                if isinstance(stats := getattr(d.model, "stats", None), ModelStats)}


def build_suite(spec: SuiteSpec, assets: Sequence[Asset] = ()) -> Suite:
    """The detectors of `spec`; a bad staff directory, or a named model that is missing, of another card
    format or of a kind that cannot observe events, raises InputError (file, line, field)."""
    models = _models(spec)
    detectors: list[Detector] = []
    names = [p for p in dict.fromkeys(spec.packs) if spec.healthcare_rules or p != "healthcare"]
    paths = [*spec.rules, *pack_paths(names, spec.workspace)]
    ruleset = load_rules(paths, cache_dir=spec.cache_dir, placeholders=spec.placeholders)
    if ruleset.rules or ruleset.correlations:
        detectors.append(SigmaDetector(ruleset))
    detectors.append(SensorAlertDetector())
    if spec.baseline is not None:
        detectors.append(ModelDetector(AssetBaseline(spec.baseline, assets)))
    if spec.clinical:
        detectors.extend(protocol_detectors())
    if spec.staff is not None:
        detectors.append(PrivacyMonitor(load_directory(spec.staff)))
    detectors.extend(models)
    return Suite(detectors, ruleset, models)


def _models(spec: SuiteSpec) -> list[ModelDetector]:
    if not spec.models:
        return []
    if spec.workspace is None:
        raise InputError(Problem(Location("--model"), "models named without a workspace", "a workspace folder"))
    # dict.fromkeys: naming a model twice would score every event twice
    return [ModelDetector(pipeline_detector(load_model(spec.workspace, name), spec.model_budget), name)
            for name in dict.fromkeys(spec.models)]
