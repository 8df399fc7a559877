"""The staff directory: the one place that says who a login is.

HL7 ADT names clinicians by XCN (`2001^Weber^Anna^^^Dr.`: an id from the HIS personnel master file), FHIR
AuditEvents by `agent.who.identifier.value` (the EHR login, `dr.weber`). Nothing in either message links
the two, so the directory does: every staff member has one `id` (the XCN id), any number of `logins`,
a role, the wards they work on, a family and given name (same-surname and co-worker checks), optionally
declared working hours, and optionally the patient ids of their own records (employees are patients too).

YAML (`staff:` list, plus optional `vip:` patient ids, `facilities:` trusted ADT sending facilities and
`registration_roles:` roles whose work is admission/discharge paperwork) or CSV with the header
`id,logins,family,given,role,wards,hours,patient_ids` (list cells separated by `;`). Problems are
collected and raised together as one `InputError`, each naming file, line and field.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from healthswarm.errors import InputError, Location, Problem

_HOURS = re.compile(r"^\s*(\d{1,2})(?::00)?\s*[-–]\s*(\d{1,2})(?::00)?\s*$")
CSV_COLUMNS = ("id", "logins", "family", "given", "role", "wards", "hours", "patient_ids")


def fold(name: str) -> str:
    """A name compared without case or accents ("Müller" == "MUELLER" is not attempted: only accents go)."""
    decomposed = unicodedata.normalize("NFKD", name.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def parse_hours(text: str) -> frozenset[int] | None:
    """'07-16' → hours 7..15 (end exclusive); '22-06' wraps midnight. None when not of that shape."""
    match = _HOURS.match(text)
    if not match:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    if start > 23 or end > 24 or start == end % 24:
        return None
    return frozenset(h % 24 for h in range(start, end if end > start else end + 24))


@dataclass(frozen=True)
class StaffMember:
    id: str
    logins: tuple[str, ...]
    family: str
    given: str
    role: str
    wards: frozenset[str]
    hours: frozenset[int] | None = None
    patient_ids: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        """How alerts name the person: first login (what the EHR shows), role and wards."""
        wards = ", ".join(sorted(self.wards)) or "no ward"
        return f"{self.logins[0] if self.logins else self.id} ({self.role}, ward {wards})"


@dataclass
class Directory:
    staff: list[StaffMember] = field(default_factory=list)
    vip: frozenset[str] = frozenset()
    facilities: frozenset[str] = frozenset()  # empty: trust every sending facility
    registration_roles: frozenset[str] = frozenset({"clerk"})

    def __post_init__(self) -> None:
        self._by_key: dict[str, StaffMember] = {}
        self._by_patient: dict[str, StaffMember] = {}
        self._by_name: dict[tuple[str, str], StaffMember] = {}
        for member in self.staff:
            for key in (member.id, *member.logins):
                self._by_key[key.casefold()] = member
            for pid in member.patient_ids:
                self._by_patient[pid] = member
            self._by_name[(fold(member.family), fold(member.given))] = member

    def lookup(self, key: str) -> StaffMember | None:
        """By HL7 XCN id or FHIR login (case-insensitive: EHR logins are)."""
        return self._by_key.get(key.casefold()) if key else None

    def as_patient(self, patient_id: str, family: str = "", given: str = "") -> tuple[StaffMember, str] | None:
        """The staff member this patient is, and how we know: the directory's patient ids, else full name."""
        member = self._by_patient.get(patient_id)
        if member is not None:
            return member, "patient id listed for the staff member in the directory"
        if family and given:
            member = self._by_name.get((fold(family), fold(given)))
            if member is not None:
                return member, "family and given name equal the staff member's"
        return None


def _list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]


def _member(raw: dict[str, Any], where: Any, problems: list[Problem]) -> StaffMember | None:
    """One record; `where(field)` gives the Location of a field."""
    before = len(problems)
    ident = str(raw.get("id") or "").strip()
    if not ident:
        problems.append(Problem(where("id"), "missing staff id", "the HIS personnel id used in HL7 XCN"))
    role = str(raw.get("role") or "").strip()
    if not role:
        problems.append(Problem(where("role"), "missing role", "e.g. physician, nurse, clerk"))
    family = str(raw.get("family") or "").strip()
    if not family:
        problems.append(Problem(where("family"), "missing family name", "the surname as HL7 XCN.2 writes it"))
    hours = None
    if raw.get("hours") not in (None, ""):
        hours = parse_hours(str(raw["hours"]))
        if hours is None:
            problems.append(Problem(where("hours"), f"invalid hours {raw['hours']!r}", "HH-HH such as 07-16 or 22-06"))
    if len(problems) > before:
        return None
    logins = tuple(_list(raw.get("logins")))
    return StaffMember(
        id=ident, logins=logins or (ident,), family=family, given=str(raw.get("given") or "").strip(), role=role,
        wards=frozenset(_list(raw.get("wards"))), hours=hours, patient_ids=frozenset(_list(raw.get("patient_ids"))),
    )


def _duplicates(staff: list[tuple[StaffMember, Location]], problems: list[Problem]) -> None:
    seen: dict[str, Location] = {}
    for member, location in staff:
        for key in {member.id.casefold(), *(login.casefold() for login in member.logins)}:
            if key in seen:
                problems.append(Problem(location, f"id or login {key!r} already used at line {seen[key].line}"))
            else:
                seen[key] = location


def _from_csv(text: str, name: str, problems: list[Problem]) -> list[tuple[StaffMember, Location]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("id", "role", "family") if c not in (reader.fieldnames or [])]
    if missing:
        problems.append(Problem(Location(name, 1), f"CSV header lacks {', '.join(missing)}", ",".join(CSV_COLUMNS)))
        return []
    out = []
    for row in reader:
        line = reader.line_num
        member = _member(row, lambda f, line=line: Location(name, line, f), problems)
        if member is not None:
            out.append((member, Location(name, line)))
    return out


def _node_value(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return node.value
    if isinstance(node, yaml.SequenceNode):
        return [_node_value(n) for n in node.value]
    return {k.value: _node_value(v) for k, v in node.value}


def _from_yaml(
    text: str, name: str, problems: list[Problem], directory: dict[str, Any]
) -> list[tuple[StaffMember, Location]]:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(Problem(Location(name, mark.line + 1 if mark else None), f"malformed YAML: {exc}"))
        return []
    if not isinstance(root, yaml.MappingNode):
        problems.append(Problem(Location(name, 1), "not a mapping", "a mapping with a 'staff' list"))
        return []
    out: list[tuple[StaffMember, Location]] = []
    for key_node, value_node in root.value:
        key, line = key_node.value, key_node.start_mark.line + 1
        if key in ("vip", "facilities", "registration_roles"):
            if not isinstance(value_node, yaml.SequenceNode):
                problems.append(Problem(Location(name, line, key), "not a list"))
                continue
            directory[key] = frozenset(str(v) for v in _node_value(value_node))
        elif key == "staff":
            if not isinstance(value_node, yaml.SequenceNode):
                problems.append(Problem(Location(name, line, "staff"), "not a list", "a list of staff records"))
                continue
            for index, item in enumerate(value_node.value):
                item_line = item.start_mark.line + 1
                if not isinstance(item, yaml.MappingNode):
                    problems.append(Problem(Location(name, item_line, f"staff[{index}]"), "not a mapping"))
                    continue
                lines = {k.value: v.start_mark.line + 1 for k, v in item.value}
                raw = _node_value(item)
                unknown = sorted(set(raw) - set(CSV_COLUMNS))
                if unknown:
                    problems.append(Problem(Location(name, lines[unknown[0]], f"staff[{index}].{unknown[0]}"),
                                            "unknown field", ", ".join(CSV_COLUMNS)))
                    continue
                member = _member(
                    raw, lambda f, i=index, ln=lines, il=item_line: Location(name, ln.get(f, il), f"staff[{i}].{f}"),
                    problems,
                )
                if member is not None:
                    out.append((member, Location(name, item_line)))
        else:
            problems.append(Problem(Location(name, line, key), "unknown key",
                                    "staff, vip, facilities, registration_roles"))
    return out


def parse_directory(text: str, name: str = "<directory>") -> Directory:
    """A directory from YAML or CSV text (CSV when the first line is a header starting with `id,`)."""
    problems: list[Problem] = []
    extra: dict[str, Any] = {}
    if text.lstrip().startswith("id,"):
        staff = _from_csv(text, name, problems)
    else:
        staff = _from_yaml(text, name, problems, extra)
    _duplicates(staff, problems)
    if problems:
        raise InputError(problems)
    return Directory(staff=[m for m, _ in staff], **extra)


def load_directory(path: str | Path) -> Directory:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Problem(Location(str(path)), f"cannot read staff directory: {exc}")) from None
    return parse_directory(text, str(path))
