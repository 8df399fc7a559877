"""Models in the workspace: `<workspace>/models/<name>/` holds `card.json`, `model.pkl` and `holdout.json`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from healthswarm.detect.learn.base import Model
from healthswarm.detect.learn.card import CARD_FILE, ModelCard
from healthswarm.errors import InputError, Location, Problem

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HOLDOUT_FILE = "holdout.json"


def models_dir(workspace: Path) -> Path:
    return workspace / "models"


def model_dir(workspace: Path, name: str) -> Path:
    if not NAME.match(name):
        raise InputError(Problem(Location("--name"), f"{name!r} is not a model name",
                                 "letters, digits, '.', '_' or '-', at most 64, starting with a letter or digit"))
    return models_dir(workspace) / name


def save_model(model: Model, workspace: Path, name: str, holdout: dict[str, list[int]] | None = None) -> Path:
    """Write the model; `holdout` maps a training file's SHA-256 to the lines kept out of training."""
    folder = model_dir(workspace, name)
    model.card.name = name
    model.save(folder)
    (folder / HOLDOUT_FILE).write_text(json.dumps(holdout or {}) + "\n", encoding="utf-8")
    return folder


def load_model(workspace: Path, name: str) -> Model:
    folder = model_dir(workspace, name)
    if not (folder / CARD_FILE).is_file():
        known = ", ".join(c.name for c, _ in list_models(workspace)) or "none yet"
        raise InputError(Problem(Location(str(folder)), f"no model named {name!r}",
                                 f"one of the workspace's models ({known})"))
    return Model.load(folder)


def load_holdout(workspace: Path, name: str) -> dict[str, set[int]]:
    path = model_dir(workspace, name) / HOLDOUT_FILE
    if not path.is_file():
        return {}
    return {sha: set(lines) for sha, lines in json.loads(path.read_text(encoding="utf-8")).items()}


def list_models(workspace: Path) -> list[tuple[ModelCard, str]]:
    """Every model folder's card and a status: 'ok' or why it cannot be loaded."""
    out: list[tuple[ModelCard, str]] = []
    root = models_dir(workspace)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not (folder / CARD_FILE).is_file():
            continue
        try:
            out.append((ModelCard.read(folder / CARD_FILE), "ok"))
        except InputError as exc:
            out.append((ModelCard(kind="?", name=folder.name), "; ".join(p.message for p in exc.problems)))
    return out
