"""The rule packs healthswarm loads by default, and the pinned SigmaHQ snapshot among them.

Three packs ship with the package:

- ``sigmahq``: a pinned snapshot of the SigmaHQ rules for the log sources healthswarm reads (Windows,
  Linux, network, emerging threats), one zip in package data, read without extraction. Its
  ``MANIFEST.json`` names the upstream commit and date and counts the rules per folder; its licence
  (Detection Rule License 1.1) and attribution travel inside the zip and beside it.
  ``healthswarm rules update --from DIR|ZIP`` installs a newer snapshot into the workspace
  (``<workspace>/rules/sigmahq.zip``), which then wins over the packaged one.
- ``healthswarm``: healthswarm's own Windows detection pack (``pack/``), for techniques SigmaHQ misses.
- ``healthcare``: the healthcare rules (HL7, FHIR, DICOM, IoMT; ``rules/``).

`load_default_rules` is the one function every face and the agent call to get the default rule set.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from healthswarm.errors import InputError, Location, Problem

HERE = Path(__file__).resolve().parent
PACKAGED_SNAPSHOT = HERE / "snapshot" / "sigmahq.zip"
HEALTHSWARM_PACK = HERE / "pack"
HEALTHCARE_PACK = HERE / "rules"
WORKSPACE_SNAPSHOT = Path("rules") / "sigmahq.zip"
MANIFEST = "MANIFEST.json"

#: Every bundled pack, in load order.
PACKS = ("sigmahq", "healthswarm", "healthcare")
#: What `detect`, `hunt` and the agent load when no pack is named.
DEFAULT_PACKS = PACKS

#: The SigmaHQ folders a snapshot keeps: the log sources healthswarm parses. Cloud, macOS, web-server
#: and application rules have no parser here; threat-hunting rules are meant for manual hunts.
SNAPSHOT_FOLDERS = ("rules/windows", "rules/linux", "rules/network", "rules-emerging-threats")
#: Files kept beside the rules: the licence and the upstream read-me (attribution).
SNAPSHOT_NOTICES = ("LICENSE", "LICENSE.Detection.Rules.md", "README.md")
ATTRIBUTION = ("Sigma rules by the SigmaHQ project and its contributors (https://github.com/SigmaHQ/sigma), "
               "released under the Detection Rule License (DRL) 1.1 "
               "(https://github.com/SigmaHQ/Detection-Rule-License). Each rule names its authors.")

_DATE = re.compile(rb"^(?:date|modified):\s*['\"]?(\d{4})[-/](\d{2})[-/](\d{2})", re.MULTILINE)
_PRODUCT = re.compile(rb"^\s*product:\s*['\"]?([A-Za-z0-9_-]+)", re.MULTILINE)


@dataclass
class Pack:
    """One pack as `rules list` shows it."""

    name: str
    path: Path
    origin: str  # packaged | workspace
    rules: int
    version: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "origin": self.origin, "rules": self.rules,
                "version": self.version, **self.details}


def snapshot_path(workspace: Path | None) -> tuple[Path, str]:
    """The SigmaHQ snapshot in use: the workspace's if one was installed, else the packaged one."""
    if workspace is not None and (workspace / WORKSPACE_SNAPSHOT).is_file():
        return workspace / WORKSPACE_SNAPSHOT, "workspace"
    return PACKAGED_SNAPSHOT, "packaged"


def pack_paths(names: Iterable[str] = DEFAULT_PACKS, workspace: Path | None = None) -> list[Path]:
    """The rule paths (folders, or the snapshot zip) of the packs named."""
    out: list[Path] = []
    for name in names:
        if name == "sigmahq":
            out.append(snapshot_path(workspace)[0])
        elif name == "healthswarm":
            out.append(HEALTHSWARM_PACK)
        elif name == "healthcare":
            out.append(HEALTHCARE_PACK)
        else:
            raise InputError(Problem(Location("--pack"), f"unknown rule pack {name!r}", f"one of {', '.join(PACKS)}"))
    return out


def load_default_rules(workspace: Path | None = None, extra: Sequence[Path] = (),
                       packs: Iterable[str] = DEFAULT_PACKS, placeholders: Mapping[str, Sequence[str]] | None = None,
                       cache: bool = True) -> Any:
    """The default rule set: the packs named (all bundled packs by default: SigmaHQ snapshot, the
    healthswarm pack, the healthcare pack) plus `extra` rule paths, compiled — from the workspace's
    compiled-rule cache when the same content was compiled before (`<workspace>/cache/sigma/`)."""
    from healthswarm.detect.sigma.cache import CACHE_SUBDIR, load_rules

    cache_dir = workspace / CACHE_SUBDIR if cache and workspace is not None else None
    paths = [*extra, *pack_paths(packs, workspace)]
    return load_rules(paths, cache_dir=cache_dir, placeholders=placeholders)


# ---------------------------------------------------------------------------------------------- snapshots


def read_manifest(path: Path) -> dict[str, Any]:
    """A snapshot zip's MANIFEST.json ({} when it has none or it cannot be read)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read(MANIFEST))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        return {}


def _rule_members(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if n.lower().endswith((".yml", ".yaml")) and "__MACOSX" not in n
                  and not Path(n).name.startswith("._") and not n.endswith("/"))


def _root_of(names: Sequence[str]) -> str:
    """The common top folder of an upstream archive (`sigma-master/`), or '' (then none is stripped)."""
    names = [n for n in names if "__MACOSX" not in n]
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names if not n.endswith("/")):
        top = next(iter(tops))
        if top != "rules" and not top.startswith("rules-"):
            return top + "/"
    return ""


def _selected(rel: str, folders: Sequence[str]) -> bool:
    return not folders or any(rel == f or rel.startswith(f.rstrip("/") + "/") for f in folders)


def build_snapshot(source: Path, out: Path, folders: Sequence[str] = SNAPSHOT_FOLDERS,
                   commit: str = "", version_date: str = "") -> dict[str, Any]:
    """Write a snapshot zip at `out` from a SigmaHQ checkout or release zip at `source`.

    Keeps the rule files under `folders` (when the source has that layout; a source without any of
    them — e.g. a release zip of one rule type — is kept whole), the licence and read-me, and a
    MANIFEST.json: upstream, commit, date (the newest `date`/`modified` of a rule unless given),
    rules per folder and per product, and a content hash. Raises InputError on a source with no rule."""
    entries: dict[str, bytes] = {}
    notices: dict[str, bytes] = {}
    source = Path(source)
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file():
                rel = path.relative_to(source).as_posix()
                if rel in SNAPSHOT_NOTICES:
                    notices[rel] = path.read_bytes()
                elif _rule_members([rel]):
                    entries[rel] = path.read_bytes()
    elif source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            names = zf.namelist()
            root = _root_of(names)
            for name in names:
                rel = name[len(root):] if root and name.startswith(root) else name
                if rel in SNAPSHOT_NOTICES or rel == MANIFEST:
                    notices[rel] = zf.read(name)
                elif _rule_members([rel]):
                    entries[rel] = zf.read(name)
    else:
        raise InputError(Problem(Location(str(source)), "not a folder or a zip file",
                                 "a SigmaHQ checkout or release zip"))
    old = json.loads(notices.pop(MANIFEST)) if MANIFEST in notices else {}
    if any(_selected(rel, folders) for rel in entries):
        entries = {rel: data for rel, data in entries.items() if _selected(rel, folders)}
    else:
        folders = ()
    if not entries:
        raise InputError(Problem(Location(str(source)), "no Sigma rule file (*.yml) found", "SigmaHQ rule folders"))
    per_folder: Counter[str] = Counter()
    per_product: Counter[str] = Counter()
    newest = ""
    digest = hashlib.blake2b(digest_size=16)
    for rel, data in sorted(entries.items()):
        parts = rel.split("/")
        per_folder["/".join(parts[:2]) if parts[0] == "rules" and len(parts) > 2 else parts[0]] += 1
        product = _PRODUCT.search(data)
        per_product[product.group(1).decode().lower() if product else "(none)"] += 1
        for y, m, d in _DATE.findall(data):
            newest = max(newest, f"{y.decode()}-{m.decode()}-{d.decode()}")
        digest.update(rel.encode() + b"\0" + hashlib.blake2b(data, digest_size=16).digest())
    manifest = {
        "name": "sigmahq",
        "upstream": old.get("upstream", "https://github.com/SigmaHQ/sigma"),
        "commit": commit or old.get("commit", ""),
        "date": version_date or old.get("date") or newest,
        "newest_rule_date": newest,
        "folders": list(folders) or sorted(per_folder),
        "rules": len(entries),
        "rules_per_folder": dict(sorted(per_folder.items())),
        "rules_per_product": dict(per_product.most_common()),
        "sha": digest.hexdigest(),
        "license": "Detection Rule License (DRL) 1.1",
        "attribution": ATTRIBUTION,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if "LICENSE" not in notices:
        notices["LICENSE"] = (f"{ATTRIBUTION}\nhttps://github.com/SigmaHQ/Detection-Rule-License/blob/main/"
                              "LICENSE.Detection.Rules.md\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        fixed = (1980, 1, 1, 0, 0, 0)  # reproducible: the same rules give the same bytes (bar built_at)
        zf.writestr(zipfile.ZipInfo(MANIFEST, fixed), json.dumps(manifest, indent=2) + "\n",
                    compress_type=zipfile.ZIP_DEFLATED)
        for rel, data in sorted({**notices, **entries}.items()):
            zf.writestr(zipfile.ZipInfo(rel, fixed), data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    _atomic_write(out, buffer.getvalue())
    return manifest


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install_snapshot(source: Path, workspace: Path, commit: str = "", version_date: str = "",
                     folders: Sequence[str] = SNAPSHOT_FOLDERS) -> dict[str, Any]:
    """Install the SigmaHQ rules at `source` (checkout folder or zip) as the workspace's snapshot; every
    rule must parse (a file pySigma cannot read is listed, not installed). Returns the new manifest."""
    from healthswarm.detect.sigma.loader import compile_files, read_files

    target = workspace / WORKSPACE_SNAPSHOT
    with tempfile.TemporaryDirectory(dir=workspace if workspace.is_dir() else None) as tmp:
        candidate = Path(tmp) / "sigmahq.zip"
        manifest = build_snapshot(source, candidate, folders, commit, version_date)
        files, _ = read_files([candidate])
        ruleset = compile_files(files)
        manifest["compiled"] = len(ruleset.rules) + len(ruleset.correlations)
        manifest["not_evaluable"] = len(ruleset.problems)
        if not manifest["compiled"]:
            raise InputError(Problem(Location(str(source)), "no rule of the snapshot compiles", "Sigma rules"))
        _atomic_write(target, candidate.read_bytes())
    return manifest


def remove_workspace_snapshot(workspace: Path) -> bool:
    """Go back to the packaged snapshot; True if a workspace snapshot was removed."""
    path = workspace / WORKSPACE_SNAPSHOT
    if path.is_file():
        path.unlink()
        return True
    return False


def _count_rules(path: Path) -> int:
    if path.is_file():
        try:
            with zipfile.ZipFile(path) as zf:
                return len(_rule_members(zf.namelist()))
        except (OSError, zipfile.BadZipFile):
            return 0
    return sum(1 for p in path.rglob("*") if p.suffix.lower() in (".yml", ".yaml"))


def pack_version(path: Path) -> str:
    """A folder pack's version: a short hash of its rule files' names and contents."""
    digest = hashlib.blake2b(digest_size=6)
    for p in sorted(path.rglob("*")):
        if p.suffix.lower() in (".yml", ".yaml"):
            digest.update(p.relative_to(path).as_posix().encode() + b"\0" + p.read_bytes())
    return digest.hexdigest()


def list_packs(workspace: Path | None = None) -> list[Pack]:
    """The bundled packs with their version and rule count (the SigmaHQ snapshot in use: workspace or packaged)."""
    snap, origin = snapshot_path(workspace)
    manifest = read_manifest(snap)
    version = " ".join(x for x in (manifest.get("date", ""), (manifest.get("commit") or "")[:10]) if x)
    out = [Pack("sigmahq", snap, origin, _count_rules(snap), version or "unknown",
                {"commit": manifest.get("commit", ""), "date": manifest.get("date", ""),
                 "rules_per_folder": manifest.get("rules_per_folder", {}),
                 "license": manifest.get("license", ""), "upstream": manifest.get("upstream", "")})]
    for name, path in (("healthswarm", HEALTHSWARM_PACK), ("healthcare", HEALTHCARE_PACK)):
        out.append(Pack(name, path, "packaged", _count_rules(path), pack_version(path)))
    return out


def validate_pack(path: Path = HEALTHSWARM_PACK, attack_json: Path | None = None,
                  exclude: Sequence[str] = ()) -> list[str]:
    """pySigma's validators (all of `sigma.validators.core`) over the rules under `path`: one line per issue.

    The ATT&CK tag validator needs ATT&CK data: `attack_json` (an enterprise-attack.json STIX bundle, e.g.
    ../shared/data/attack/) is used offline; without it the ATT&CK and D3FEND tag validators are left out."""
    from sigma.collection import SigmaCollection
    from sigma.validation import SigmaValidator
    from sigma.validators.core import validators

    names = dict(validators)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if attack_json is not None and attack_json.is_file():
        from sigma.data import mitre_attack, mitre_d3fend

        tmp = tempfile.TemporaryDirectory(prefix="hs-sigma-validate-")
        empty = Path(tmp.name) / "d3fend.json"
        empty.write_text('{"@graph": []}')  # no D3FEND tag in the pack; the validator only needs the table
        mitre_attack.set_cache_dir(str(Path(tmp.name) / "attack"))
        mitre_attack.set_url(str(attack_json))
        mitre_d3fend.set_cache_dir(str(Path(tmp.name) / "d3fend"))
        mitre_d3fend.set_url(str(empty))
    else:
        names = {k: v for k, v in names.items() if "attack" not in k and "d3fend" not in k and k != "tag_format"}
    names = {k: v for k, v in names.items() if k not in exclude}
    try:
        files = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in (".yml", ".yaml"))
        collection = SigmaCollection.load_ruleset(files, collect_errors=True)
        out = [f"{getattr(r.source, 'path', '')}: {e}" for r in collection.rules for e in r.errors]
        validator = SigmaValidator(names.values())
        for issue in validator.validate_rules(collection.rules):
            where = ", ".join(str(getattr(r.source, "path", "") or getattr(r, "title", "")) for r in issue.rules)
            out.append(f"{where}: {type(issue).__name__}: {issue.description}")
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()
