"""The learn/score protocol, the registry of kinds, model cards and the workspace store."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from healthswarm.detect.learn import CARD_FORMAT, Model, Table, kinds, model_class, register
from healthswarm.detect.learn.card import CARD_FILE, STATE_FILE
from healthswarm.detect.learn.workspace import list_models, load_model, save_model
from healthswarm.errors import InputError


@register
class MeanDistance(Model):
    """A tiny real model: distance of `value` from the running mean, squashed to 0..1."""

    kind = "test-mean-distance"

    def __init__(self) -> None:
        super().__init__()
        self.n, self.mean = 0, 0.0

    def learn_one(self, x: Mapping[str, Any], y: Any = None) -> None:
        self.n += 1
        self.mean += (float(x["value"]) - self.mean) / self.n

    def learn_many(self, X: Table, y: Sequence[Any] | np.ndarray | None = None) -> None:
        for row in X.rows():
            self.learn_one(row)

    def score_one(self, x: Mapping[str, Any]) -> float:
        d = abs(float(x["value"]) - self.mean)
        return d / (1 + d)


def test_builtin_kinds_and_plugin_registration() -> None:
    assert {"flow-classifier", "asset-baseline", "telemetry", "test-mean-distance"} <= set(kinds())
    assert model_class("test-mean-distance") is MeanDistance
    assert model_class("flow-classifier").__name__ == "FlowClassifier"
    with pytest.raises(InputError, match="unknown model kind 'nope'"):
        model_class("nope")


def test_protocol_save_load_round_trip(tmp_path: Path) -> None:
    m = MeanDistance()
    m.learn_many(Table.from_records([{"value": v} for v in (1.0, 2.0, 3.0)]))
    m.learn_one({"value": 6.0})
    assert m.score_one({"value": 3.0}) == 0.0
    assert m.score_one({"value": 103.0}) > 0.99
    assert list(m.score_many(Table.from_records([{"value": 3.0}, {"value": 4.0}]))) == [0.0, 0.5]
    folder = save_model(m, tmp_path, "mean")
    loaded = load_model(tmp_path, "mean")
    assert isinstance(loaded, MeanDistance) and loaded.mean == 3.0 and loaded.card.name == "mean"
    card = json.loads((folder / CARD_FILE).read_text())
    assert card["format"] == CARD_FORMAT and card["kind"] == "test-mean-distance" and card["created"]
    assert card["healthswarm_version"] and len(card["state_sha256"]) == 64
    assert [(c.name, status) for c, status in list_models(tmp_path)] == [("mean", "ok")]


def test_card_from_another_format_is_refused(tmp_path: Path) -> None:
    folder = save_model(MeanDistance(), tmp_path, "old")
    card = json.loads((folder / CARD_FILE).read_text())
    card["format"], card["healthswarm_version"] = CARD_FORMAT + 1, "9.9.9"
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(InputError) as err:
        load_model(tmp_path, "old")
    text = str(err.value)
    assert "card.json: format" in text and "healthswarm 9.9.9" in text and "retrain" in text and "\n" not in text
    assert list_models(tmp_path)[0][1].startswith("model card format 2")


def test_tampered_state_missing_model_and_bad_name(tmp_path: Path) -> None:
    folder = save_model(MeanDistance(), tmp_path, "m1")
    (folder / STATE_FILE).write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="does not match its card"):
        load_model(tmp_path, "m1")
    with pytest.raises(InputError, match="no model named 'absent'"):
        load_model(tmp_path, "absent")
    with pytest.raises(InputError, match="is not a model name"):
        save_model(MeanDistance(), tmp_path, "../escape")
