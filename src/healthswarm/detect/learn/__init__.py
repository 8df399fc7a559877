"""Learning detectors: one learn/score protocol (`base.Model`), model kinds by name (`registry`),
model cards, and the workspace store of trained models. See docs/learn.md."""

from healthswarm.detect.learn.base import Classifier, Model
from healthswarm.detect.learn.card import CARD_FORMAT, ModelCard
from healthswarm.detect.learn.registry import kinds, model_class, register
from healthswarm.detect.learn.table import Table

__all__ = ["CARD_FORMAT", "Classifier", "Model", "ModelCard", "Table", "kinds", "model_class", "register"]
