"""The one protocol every learning model follows, river-style, and its persistence.

    learn_one(x, y=None)   update from one record (a flat dict: ECS fields or CSV columns)
    learn_many(X, y=None)  update from a Table (batch models fit here)
    score_one(x) -> float  how suspicious x is, 0 (normal) … 1 (attack/anomalous)
    predict_one(x)         the class label (classifiers only)
    save(path) / load(path) a folder with `card.json` (the ModelCard) and `model.pkl` (the state)

Batch models (scikit-learn) keep what `learn_one` gives them and refit on the next score, so the
protocol holds for them too; streaming models update in place.

The state is a pickle: load models only from your own workspace. Its SHA-256 is in the card and
checked on load, so a swapped or truncated state file is refused.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from healthswarm.detect.learn.card import CARD_FILE, STATE_FILE, ModelCard, file_sha256
from healthswarm.detect.learn.table import Table
from healthswarm.errors import InputError, Location, Problem

if TYPE_CHECKING:
    from healthswarm.detect.learn.datasets import LabelledData


class Model(ABC):
    """Base of every model kind; subclasses register themselves with `registry.register`."""

    kind: ClassVar[str] = ""
    supervised: ClassVar[bool] = False
    #: the labelled-data layouts a supervised kind trains on (see `datasets`)
    layouts: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.card = ModelCard(kind=self.kind)

    @abstractmethod
    def learn_one(self, x: Mapping[str, Any], y: Any = None) -> None: ...

    @abstractmethod
    def learn_many(self, X: Table, y: Sequence[Any] | np.ndarray | None = None) -> None: ...

    @abstractmethod
    def score_one(self, x: Mapping[str, Any]) -> float: ...

    @classmethod
    def from_data(cls, data: LabelledData, train: np.ndarray, **params: Any) -> Model:
        """A model of this kind trained on the `train` rows of labelled data."""
        model = cls(**params)
        model.learn_many(data.table.take(train), data.labels[train])
        return model

    def score_many(self, X: Table) -> np.ndarray:
        return np.fromiter((self.score_one(r) for r in X.rows()), dtype=np.float64, count=len(X))

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        state = path / STATE_FILE
        with state.open("wb") as stream:
            pickle.dump(self, stream, protocol=pickle.HIGHEST_PROTOCOL)
        self.card.state_sha256 = file_sha256(state)
        self.card.write(path / CARD_FILE)

    @staticmethod
    def load(path: Path) -> Model:
        """Read a saved model folder: the card first (format checked), then the state (hash checked)."""
        from healthswarm.detect.learn.registry import model_class

        card = ModelCard.read(path / CARD_FILE)
        cls = model_class(card.kind, Location(str(path / CARD_FILE), field="kind"))
        state = path / STATE_FILE
        if not state.is_file() or file_sha256(state) != card.state_sha256:
            raise InputError(Problem(Location(str(state)), "model state is missing or does not match its card",
                                     "the model.pkl written with this card.json"))
        with state.open("rb") as stream:
            try:
                model = pickle.load(stream)
            except Exception as exc:  # a state from other library versions fails in many ways
                raise InputError(Problem(Location(str(state)), f"cannot read the model state ({exc})",
                                         "a model trained with this healthswarm; retrain it")) from None
        if not isinstance(model, cls):
            raise InputError(Problem(Location(str(state)), f"state is a {type(model).__name__}",
                                     f"a {cls.__name__} as the card says"))
        model.card = card
        return model


class Classifier(Model):
    """A supervised model that also names the class."""

    supervised: ClassVar[bool] = True

    @abstractmethod
    def predict_one(self, x: Mapping[str, Any]) -> str: ...

    def predict_many(self, X: Table) -> np.ndarray:
        return np.asarray([self.predict_one(r) for r in X.rows()], dtype=object)
