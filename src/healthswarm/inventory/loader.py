"""Load and validate an infrastructure description (YAML), reporting every problem at once.

The YAML is composed into nodes (libyaml when available) rather than loaded into plain objects, so
every problem can name the line it stands on. Validation never stops at the first problem: it
collects them all, and the caller decides (the CLI prints them one per line and exits 2).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import (
    ASSET_KINDS,
    DEPENDENCY_KINDS,
    FLOW_PROTOCOLS,
    ORGANISATION_KINDS,
    ZONE_EXPOSURES,
    Asset,
    Criticality,
    Dependency,
    Flow,
    Inventory,
    Level,
    Organisation,
    Zone,
)
from healthswarm.model.inventory import LEVEL_NAMES, Hl7Identity

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SECTIONS = ("organisations", "zones", "assets", "flows", "dependencies")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _one_of(values: Iterable[str]) -> str:
    return "one of " + ", ".join(sorted(values))


@dataclass
class _Reader:
    """Walks composed YAML nodes, converting values and recording problems with their lines."""

    file: str
    problems: list[Problem] = field(default_factory=list)

    def where(self, node: yaml.Node, fieldname: str | None = None) -> Location:
        return Location(self.file, node.start_mark.line + 1, fieldname)

    def problem(self, node: yaml.Node, fieldname: str | None, message: str, expected: str | None = None) -> None:
        self.problems.append(Problem(self.where(node, fieldname), message, expected))

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, None, f"{what} is a {_node_kind(node)}", "a mapping of field: value")
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.problem(key_node, None, f"{what} has a non-text key", "field names as text")
                continue
            if key in out:
                self.problem(key_node, key, f"field {key!r} given twice in {what}")
            out[key] = (key_node, value_node)
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, what, f"{what} is a {_node_kind(node)}", "a list")
            return []
        return list(node.value)

    def text(self, node: yaml.Node, fieldname: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
            self.problem(node, fieldname, f"is a {_node_kind(node)}", "text")
            return None
        return str(node.value)

    def integer(self, node: yaml.Node, fieldname: str, low: int, high: int | None = None) -> int | None:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":int"):
            try:
                number = int(node.value.replace("_", ""), 0)
            except ValueError:
                number = None
            if number is not None and number >= low and (high is None or number <= high):
                return number
        bounds = f"a whole number from {low}" + (f" to {high}" if high is not None else " up")
        self.problem(node, fieldname, f"{_show(node)} is not a valid value", bounds)
        return None

    def texts(self, node: yaml.Node, fieldname: str) -> list[tuple[yaml.Node, str]]:
        out = []
        for item in self.sequence(node, fieldname):
            value = self.text(item, fieldname)
            if value is not None:
                out.append((item, value))
        return out

    def choice(self, node: yaml.Node, fieldname: str, allowed: frozenset[str]) -> str | None:
        value = self.text(node, fieldname)
        if value is None:
            return None
        if value not in allowed:
            self.problem(node, fieldname, f"unknown {fieldname} {value!r}", _one_of(allowed))
            return None
        return value


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    if node.tag.endswith(":null"):
        return "null"
    return f"scalar {node.value!r}"


def _show(node: yaml.Node) -> str:
    return repr(node.value) if isinstance(node, yaml.ScalarNode) else _node_kind(node)


@dataclass
class _Record:
    """Fields of one list item, checked against the required and optional names of its section."""

    reader: _Reader
    node: yaml.Node
    fields: dict[str, tuple[yaml.Node, yaml.Node]]

    def get(self, name: str) -> yaml.Node | None:
        pair = self.fields.get(name)
        return pair[1] if pair else None

    def required_text(self, name: str) -> str | None:
        value_node = self.get(name)
        if value_node is None:
            self.reader.problem(self.node, name, f"missing required field {name!r}")
            return None
        return self.reader.text(value_node, name)

    def optional_text(self, name: str) -> str:
        value_node = self.get(name)
        if value_node is None or (isinstance(value_node, yaml.ScalarNode) and value_node.tag.endswith(":null")):
            return ""
        return self.reader.text(value_node, name) or ""

    def required_choice(self, name: str, allowed: frozenset[str]) -> str | None:
        value_node = self.get(name)
        if value_node is None:
            self.reader.problem(self.node, name, f"missing required field {name!r}", _one_of(allowed))
            return None
        return self.reader.choice(value_node, name, allowed)


@dataclass(frozen=True)
class _Section:
    """Required and optional field names of one top-level section (for unknown-field errors)."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    known: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "known", frozenset(self.required + self.optional))


_SECTIONS = {
    "organisations": _Section(("id", "name", "kind"), ("country", "description")),
    "zones": _Section(("id", "organisation", "name", "exposure"), ("description",)),
    "assets": _Section(
        ("id", "organisation", "zone", "kind", "name"),
        ("vendor", "product", "version", "cpe", "addresses", "hostnames", "criticality", "records",
         "attributes", "hl7", "description"),
    ),
    "flows": _Section(("from", "to", "protocol"), ("port", "description")),
    "dependencies": _Section(("from", "to", "kind"), ("description",)),
}


@dataclass(frozen=True)
class _Where:
    """Where a record stands: its file, its first line and the line of each of its fields."""

    file: str
    line: int
    field_lines: dict[str, int]

    def at(self, fieldname: str) -> Location:
        return Location(self.file, self.field_lines.get(fieldname, self.line), fieldname)


@dataclass
class _Collected:
    organisations: list[tuple[Organisation, _Where]] = field(default_factory=list)
    zones: list[tuple[Zone, _Where]] = field(default_factory=list)
    assets: list[tuple[Asset, _Where]] = field(default_factory=list)
    flows: list[tuple[Flow, _Where]] = field(default_factory=list)
    dependencies: list[tuple[Dependency, _Where]] = field(default_factory=list)
    # (network, asset id, location) for the overlap check
    networks: list[tuple[Network, str, Location]] = field(default_factory=list)


def _read_organisation(rec: _Record) -> Organisation | None:
    ident, name = rec.required_text("id"), rec.required_text("name")
    kind = rec.required_choice("kind", ORGANISATION_KINDS)
    if ident is None or name is None or kind is None:
        return None
    return Organisation(ident, name, kind, rec.optional_text("country"))


def _read_zone(rec: _Record) -> Zone | None:
    ident, org, name = rec.required_text("id"), rec.required_text("organisation"), rec.required_text("name")
    exposure = rec.required_choice("exposure", ZONE_EXPOSURES)
    if ident is None or org is None or name is None or exposure is None:
        return None
    return Zone(ident, org, name, exposure)


def _read_criticality(reader: _Reader, node: yaml.Node | None) -> Criticality:
    if node is None:
        return Criticality()
    fields = reader.mapping(node, "criticality")
    if fields is None:
        return Criticality()
    levels: dict[str, Level] = {}
    for key, (key_node, value_node) in fields.items():
        if key not in ("safety", "confidentiality", "availability"):
            reader.problem(key_node, f"criticality.{key}", f"unknown field {key!r}",
                           "safety, confidentiality or availability")
            continue
        text = reader.text(value_node, f"criticality.{key}")
        if text is None:
            continue
        if text.lower() not in LEVEL_NAMES:
            reader.problem(value_node, f"criticality.{key}", f"unknown level {text!r}", _one_of(LEVEL_NAMES))
            continue
        levels[key] = Level.parse(text)
    return Criticality(**levels)


def _read_addresses(reader: _Reader, node: yaml.Node | None, asset_id: str,
                    collected: _Collected) -> tuple[str, ...]:
    if node is None:
        return ()
    out = []
    for item, text in reader.texts(node, "addresses"):
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            expected = "an IP address or a CIDR network without host bits (10.1.2.0/24)"
            reader.problem(item, "addresses", f"bad address or CIDR {text!r}: {exc}", expected)
            continue
        out.append(str(network.network_address) if network.num_addresses == 1 else str(network))
        collected.networks.append((network, asset_id, reader.where(item, "addresses")))
    return tuple(out)


def _read_asset(rec: _Record, collected: _Collected) -> Asset | None:
    reader = rec.reader
    ident = rec.required_text("id")
    org, zone = rec.required_text("organisation"), rec.required_text("zone")
    kind = rec.required_choice("kind", ASSET_KINDS)
    name = rec.required_text("name")
    addresses = _read_addresses(reader, rec.get("addresses"), ident or "?", collected)
    hostnames_node = rec.get("hostnames")
    hostnames = tuple(v for _, v in reader.texts(hostnames_node, "hostnames")) if hostnames_node else ()
    records = None
    if (records_node := rec.get("records")) is not None:
        records = reader.integer(records_node, "records", 0)
    attributes: dict[str, str] = {}
    if (attributes_node := rec.get("attributes")) is not None:
        for key, (_, value_node) in (reader.mapping(attributes_node, "attributes") or {}).items():
            value = reader.text(value_node, f"attributes.{key}")
            if value is not None:
                attributes[key] = value
    criticality = _read_criticality(reader, rec.get("criticality"))
    hl7 = _read_hl7(reader, rec.get("hl7"))
    if ident is None or org is None or zone is None or kind is None or name is None:
        return None
    return Asset(
        id=ident, organisation=org, zone=zone, kind=kind, name=name,
        vendor=rec.optional_text("vendor"), product=rec.optional_text("product"),
        version=rec.optional_text("version"), cpe=rec.optional_text("cpe"),
        addresses=addresses, hostnames=hostnames, criticality=criticality, records=records,
        attributes=attributes, hl7=hl7,
    )


_HL7_NAME = re.compile(r"^[^|^~\\&\r\n]{1,180}$")  # an HL7 namespace id: no delimiters, one line


def _read_hl7(reader: _Reader, node: yaml.Node | None) -> Hl7Identity | None:
    """`hl7: {applications: [ORBIS, …], facility: STA}`: the MSH-3/5 application names and the MSH-4/6
    facility this asset sends and receives HL7 v2 messages as."""
    if node is None:
        return None
    fields = reader.mapping(node, "hl7")
    if fields is None:
        return None
    applications: list[str] = []
    facility = ""
    for key, (key_node, value_node) in fields.items():
        if key == "applications":
            for item, text in reader.texts(value_node, "hl7.applications"):
                if not _HL7_NAME.match(text.strip()):
                    reader.problem(item, "hl7.applications", f"bad HL7 application name {text!r}",
                                   "an MSH-3 namespace id without HL7 delimiters (| ^ ~ \\ &)")
                elif text.strip() not in applications:
                    applications.append(text.strip())
        elif key == "facility":
            text = reader.text(value_node, "hl7.facility")
            if text is not None and not _HL7_NAME.match(text.strip()):
                reader.problem(value_node, "hl7.facility", f"bad HL7 facility name {text!r}",
                               "an MSH-4 namespace id without HL7 delimiters (| ^ ~ \\ &)")
            elif text is not None:
                facility = text.strip()
        else:
            reader.problem(key_node, f"hl7.{key}", f"unknown field {key!r}", "applications or facility")
    if not applications:
        reader.problem(node, "hl7.applications", "no HL7 application names",
                       "a list of the MSH-3 names the asset sends as, e.g. [ORBIS]")
        return None
    return Hl7Identity(tuple(applications), facility)


def _read_flow(rec: _Record) -> Flow | None:
    source, target = rec.required_text("from"), rec.required_text("to")
    protocol = rec.required_choice("protocol", FLOW_PROTOCOLS)
    port = None
    if (port_node := rec.get("port")) is not None:
        port = rec.reader.integer(port_node, "port", 1, 65535)
    if source is None or target is None or protocol is None:
        return None
    return Flow(source, target, protocol, port)


def _read_dependency(rec: _Record) -> Dependency | None:
    source, target = rec.required_text("from"), rec.required_text("to")
    kind = rec.required_choice("kind", DEPENDENCY_KINDS)
    if source is None or target is None or kind is None:
        return None
    return Dependency(source, target, kind)


def _read_file(path: Path, text: str, collected: _Collected, problems: list[Problem]) -> None:
    reader = _Reader(str(path))
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problems.append(Problem(Location(str(path), line), f"malformed YAML: {exc.problem or exc}",
                                "well-formed YAML"))
        return
    except yaml.YAMLError as exc:
        problems.append(Problem(Location(str(path)), f"malformed YAML: {exc}", "well-formed YAML"))
        return
    if root is None:
        problems.append(Problem(Location(str(path)), "the file is empty", "a mapping with " + ", ".join(SECTIONS)))
        return
    top = reader.mapping(root, "the document")
    readers: dict[str, Callable[[_Record], Any]] = {
        "organisations": _read_organisation,
        "zones": _read_zone,
        "assets": lambda rec: _read_asset(rec, collected),
        "flows": _read_flow,
        "dependencies": _read_dependency,
    }
    for key, (key_node, value_node) in (top or {}).items():
        if key not in readers:
            reader.problem(key_node, key, f"unknown section {key!r}", _one_of(SECTIONS))
            continue
        section = _SECTIONS[key]
        target: list = getattr(collected, key)
        for item in reader.sequence(value_node, key):
            fields = reader.mapping(item, f"an item of {key}")
            if fields is None:
                continue
            for name, (name_node, _) in fields.items():
                if name not in section.known:
                    reader.problem(name_node, name, f"unknown field {name!r} in {key}", _one_of(section.known))
            record = readers[key](_Record(reader, item, fields))
            if record is not None:
                lines = {name: value.start_mark.line + 1 for name, (_, value) in fields.items()}
                target.append((record, _Where(str(path), item.start_mark.line + 1, lines)))
    problems.extend(reader.problems)


def _check_unique(items: Sequence[tuple[Any, _Where]], what: str, problems: list[Problem]) -> dict[str, Any]:
    seen: dict[str, tuple[Any, _Where]] = {}
    for record, loc in items:
        if record.id in seen:
            first = seen[record.id][1]
            problems.append(Problem(loc.at("id"),
                                    f"duplicate {what} id {record.id!r} (first at {first.file}:{first.line})",
                                    f"a unique {what} id"))
        else:
            seen[record.id] = (record, loc)
    return {k: v[0] for k, v in seen.items()}


def _check_references(c: _Collected, problems: list[Problem]) -> None:
    orgs = _check_unique(c.organisations, "organisation", problems)
    zones = _check_unique(c.zones, "zone", problems)
    assets = _check_unique(c.assets, "asset", problems)

    def dangling(loc: _Where, fieldname: str, value: str, what: str) -> None:
        article = "an" if what[:1] in "aeiou" else "a"
        problems.append(Problem(loc.at(fieldname), f"unknown {what} {value!r}",
                                f"the id of {article} {what} defined in the inventory"))

    for zone, loc in c.zones:
        if zone.organisation not in orgs:
            dangling(loc, "organisation", zone.organisation, "organisation")
    for asset, loc in c.assets:
        if asset.organisation not in orgs:
            dangling(loc, "organisation", asset.organisation, "organisation")
        zone = zones.get(asset.zone)
        if zone is None:
            dangling(loc, "zone", asset.zone, "zone")
        elif asset.organisation in orgs and zone.organisation != asset.organisation:
            problems.append(Problem(loc.at("zone"),
                                    f"zone {asset.zone!r} belongs to organisation {zone.organisation!r}, "
                                    f"not {asset.organisation!r}", "a zone of the asset's own organisation"))
    for links in (c.flows, c.dependencies):
        for link, loc in links:
            for fieldname, value in (("from", link.source), ("to", link.target)):
                if value not in assets:
                    dangling(loc, fieldname, value, "asset")


def _check_hl7(c: _Collected, problems: list[Problem]) -> None:
    """Two assets declaring the same HL7 application at the same facility make HL7 → asset ambiguous."""
    seen: dict[tuple[str, str], tuple[str, _Where]] = {}
    for asset, loc in c.assets:
        for app in asset.hl7.applications if asset.hl7 else ():
            key = (app.lower(), asset.hl7.facility.lower())
            other = seen.setdefault(key, (asset.id, loc))
            if other[0] != asset.id:
                problems.append(Problem(
                    loc.at("hl7"), f"HL7 application {app!r} at facility {asset.hl7.facility or '(any)'!r} is "
                    f"declared by asset {other[0]!r} too (at {other[1].file}:{other[1].line})",
                    "an HL7 application and facility that name one asset only"))


def _check_overlaps(c: _Collected, problems: list[Problem]) -> None:
    """Two assets claiming the same address make address→asset resolution ambiguous."""
    for version in (4, 6):
        nets = sorted((n for n in c.networks if n[0].version == version),
                      key=lambda n: (int(n[0].network_address), -n[0].num_addresses))
        widest_end, widest = -1, None
        for entry in nets:
            network, asset_id, loc = entry
            start = int(network.network_address)
            if widest is not None and start <= widest_end:
                other_net, other_asset, other_loc = widest
                same = "the same asset lists" if other_asset == asset_id else f"asset {other_asset!r} has"
                problems.append(Problem(
                    loc, f"address {network} of asset {asset_id!r} overlaps {other_net}, which {same} "
                         f"(at {other_loc.file}:{other_loc.line})",
                    "addresses that belong to one asset only"))
            end = int(network.broadcast_address)
            if end > widest_end:
                widest_end, widest = end, entry


def load_inventory(paths: Sequence[Path]) -> Inventory:
    """Read one or more YAML files into one validated Inventory; raise InputError with every problem."""
    collected = _Collected()
    problems: list[Problem] = []
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
            if not found:
                problems.append(Problem(Location(str(path)), "no .yaml or .yml files in this folder",
                                        "inventory YAML files"))
            files.extend(found)
        else:
            files.append(path)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(Problem(Location(str(path)), "no such file", "an inventory YAML file"))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(Location(str(path)), f"cannot be read: {exc}", "a UTF-8 text file"))
            continue
        _read_file(path, text, collected, problems)
    _check_references(collected, problems)
    _check_overlaps(collected, problems)
    _check_hl7(collected, problems)
    if problems:
        raise InputError(sorted(problems, key=lambda p: (p.location.file, p.location.line or 0)))
    return Inventory(
        organisations=tuple(r for r, _ in collected.organisations),
        zones=tuple(r for r, _ in collected.zones),
        assets=tuple(r for r, _ in collected.assets),
        flows=tuple(r for r, _ in collected.flows),
        dependencies=tuple(r for r, _ in collected.dependencies),
    )
