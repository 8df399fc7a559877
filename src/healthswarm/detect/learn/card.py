"""The model card: what a saved model was trained on, with which features and split, and how well it did.

It is written as JSON beside the model state (`card.json`) and read first on load: a card of another
format version is refused with a clear error rather than guessed at.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from healthswarm import __version__
from healthswarm.errors import InputError, Location, Problem

#: Bump when the card or the state layout changes incompatibly; loading another version is refused.
CARD_FORMAT = 1
CARD_FILE = "card.json"
STATE_FILE = "model.pkl"


@dataclass(frozen=True, slots=True)
class DataFile:
    """One file a model was trained or evaluated on: path, layout, rows read and SHA-256 of the bytes."""

    path: str
    layout: str
    rows: int
    sha256: str

    @classmethod
    def of(cls, path: Path, layout: str, rows: int) -> DataFile:
        return cls(str(path), layout, rows, file_sha256(path))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(slots=True)
class ModelCard:
    kind: str
    name: str = ""
    layout: str = ""
    features: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    data: list[DataFile] = field(default_factory=list)
    split: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    healthswarm_version: str = __version__
    format: int = CARD_FORMAT
    state_sha256: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> ModelCard:
        where = Location(str(path))
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(Problem(where, "no model card here", "a model folder written by healthswarm")) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(Problem(where, f"model card is not valid JSON ({exc})")) from None
        if not isinstance(doc, dict):
            raise InputError(Problem(where, "model card is not a JSON object"))
        version = doc.get("format")
        if version != CARD_FORMAT:
            raise InputError(Problem(
                Location(str(path), field="format"),
                f"model card format {version!r} written by healthswarm {doc.get('healthswarm_version', '?')}",
                f"format {CARD_FORMAT} (healthswarm {__version__}); retrain it with `healthswarm model train`",
            ))
        try:
            data = [DataFile(**d) for d in doc.pop("data", [])]
            return cls(data=data, **doc)
        except TypeError as exc:
            raise InputError(Problem(where, f"model card has unexpected fields ({exc})")) from None
