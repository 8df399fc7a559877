"""The shipped healthcare playbooks (`library/*.json`) and finding one by name, file stem or id."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from healthswarm.errors import InputError, Location, Problem
from healthswarm.respond.playbooks.validate import Playbook, load_playbook, read_json

LIBRARY = Path(__file__).parent / "library"


@dataclass
class Library:
    playbooks: dict[str, Playbook] = field(default_factory=dict)  # by id
    stems: dict[str, str] = field(default_factory=dict)  # file stem → id

    @classmethod
    def load(cls, folder: Path = LIBRARY) -> Library:
        paths = sorted(folder.glob("*.json"))
        ids = {doc.get("id") for doc in (read_json(p) for p in paths) if isinstance(doc, dict)}
        lib = cls()
        problems = []
        for path in paths:
            try:
                playbook = load_playbook(path, {i for i in ids if isinstance(i, str)})
            except InputError as exc:
                problems.extend(exc.problems)
                continue
            lib.playbooks[playbook.id] = playbook
            lib.stems[path.stem] = playbook.id
        if problems:
            raise InputError(problems)
        return lib

    def find(self, name: str) -> Playbook:
        if name in self.playbooks:
            return self.playbooks[name]
        if name in self.stems:
            return self.playbooks[self.stems[name]]
        for playbook in self.playbooks.values():
            if playbook.name.lower() == name.lower():
                return playbook
        raise InputError(Problem(Location("playbook"), f"no playbook {name!r}", ", ".join(sorted(self.stems))))
