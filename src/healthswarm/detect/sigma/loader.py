"""Rule loading: every Sigma YAML file under the given paths → a `RuleSet`.

pySigma parses each file (collections with `action: global/reset/repeat`, filters, correlation
rules); filters are applied and correlation references resolved across all files, as SigmaHQ's
layout spreads them. Every rule either compiles or is listed in `RuleSet.problems` with its file and
reason: broken YAML, unknown modifiers, invalid or catastrophic regular expressions, unsupported
correlation types and unconfigured `|expand` placeholders never stop the other rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from healthswarm.detect.sigma.ruleset import ENGINE_VERSION, RuleSet
from healthswarm.errors import Location, Problem

RULE_SUFFIXES = (".yml", ".yaml")


def rule_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """The YAML files named or found (recursively) under `paths`, sorted; missing paths as problems."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in RULE_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(Location(str(path)), "no such file or folder", "Sigma rule files or folders"))
    return files, problems


def content_key(files: Sequence[tuple[Path, bytes]], placeholders: Mapping[str, Sequence[str]] | None,
                extra: str = "") -> str:
    """The cache key: engine version, every file's path and content, the placeholder values, ATT&CK data."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(ENGINE_VERSION.encode())
    for path, data in files:
        digest.update(str(path).encode() + b"\x00" + hashlib.blake2b(data, digest_size=16).digest())
    for name in sorted(placeholders or {}):
        joined = "\x02".join((placeholders or {})[name])
        digest.update(f"\x01{name}={joined}".encode())
    digest.update(extra.encode())
    return digest.hexdigest()


def _problem(source: Any, rule: str, message: str, expected: str | None = None) -> Problem:
    path = str(getattr(source, "path", source) or "")
    line = getattr(source, "line", None)
    return Problem(Location(path, line, rule or None), message, expected)


def _label(rule: Any) -> str:
    if getattr(rule, "id", None):
        return f"rule {rule.id}" + (f" ({rule.title})" if getattr(rule, "title", "") else "")
    return f"rule {getattr(rule, 'title', '') or '(untitled)'}"


#: Modifier names of the Sigma specification that pySigma knows under another name.
MODIFIER_ALIASES = {"utf16le": "wide"}


def register_modifier_aliases() -> None:
    """Teach pySigma's modifier registry the specification's names it lacks (`utf16le` = `wide`)."""
    from sigma import modifiers

    for alias, name in MODIFIER_ALIASES.items():
        if alias not in modifiers.modifier_mapping and name in modifiers.modifier_mapping:
            modifiers.modifier_mapping[alias] = modifiers.modifier_mapping[name]


def compile_files(files: Sequence[tuple[Path, bytes]], placeholders: Mapping[str, Sequence[str]] | None = None,
                  pipeline: Any = None, attack_dir: Path | None = None) -> RuleSet:
    """Parse and compile rule files (already read) into a RuleSet. Imports pySigma."""
    import yaml
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaError, SigmaRuleLocation
    from sigma.filters import SigmaFilter
    from sigma.rule import SigmaRule
    from sigma.rule.base import SigmaYAMLLoader

    from healthswarm.detect.attack import catalog
    from healthswarm.detect.sigma.compiler import check_correlation, compile_correlation, compile_rule
    from healthswarm.detect.sigma.values import CompileError, Context

    register_modifier_aliases()
    out = RuleSet(files=len(files))
    parsed: list[Any] = []
    filters: list[Any] = []
    for path, data in files:
        location = SigmaRuleLocation(path)
        try:
            docs = [d for d in yaml.load_all(data, Loader=SigmaYAMLLoader) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            out.problems.append(Problem(Location(str(path), line), f"invalid YAML: {getattr(exc, 'problem', exc)}",
                                        "a Sigma rule document"))
            continue
        except (UnicodeDecodeError, ValueError) as exc:
            out.problems.append(Problem(Location(str(path)), f"unreadable: {exc}", "UTF-8 YAML"))
            continue
        if not all(isinstance(d, dict) for d in docs):
            out.problems.append(Problem(Location(str(path)), "a YAML document is not a mapping",
                                        "a Sigma rule (title, logsource, detection)"))
            continue
        try:
            collection = SigmaCollection.from_dicts(docs, collect_errors=True, source=location,
                                                    collect_filters=True, resolve_references=False)
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as exc:
            out.problems.append(_problem(location, "", f"cannot be parsed: {exc}", "a Sigma rule document"))
            continue
        for error in collection.errors:
            if not any(error in getattr(r, "errors", ()) for r in collection.rules):
                out.problems.append(_problem(getattr(error, "source", None) or location, "", str(error)))
        parsed.extend(collection.rules)
        filters.extend(collection.filters)

    attack = catalog(attack_dir)
    ctx = Context(placeholders)
    by_key: dict[str, Any] = {}
    for rule in parsed:
        if rule.id is not None:
            by_key[str(rule.id)] = rule
        if rule.name:
            by_key[rule.name] = rule

    for flt in filters:
        if flt.errors:
            out.problems.append(_problem(flt.source, _label(flt), "; ".join(str(e) for e in flt.errors)))
            continue
        for i, rule in enumerate(parsed):
            if isinstance(rule, SigmaRule) and not rule.errors:
                try:
                    parsed[i] = flt.apply_on_rule(rule)
                except (SigmaError, ValueError, KeyError) as exc:
                    out.problems.append(_problem(flt.source, _label(flt), f"cannot apply to {_label(rule)}: {exc}"))

    lookup = _Lookup(by_key)
    first_source: dict[str, Any] = {}
    for rule in parsed:
        label = _label(rule)
        if rule.id is not None and isinstance(rule, SigmaRule | SigmaCorrelationRule):
            # one rule id, one rule: a copy in a later path (e.g. a bundled pack after the user's own rules) is
            # skipped, or the same rule would raise every alert twice
            if str(rule.id) in first_source:
                where = getattr(first_source[str(rule.id)], "path", "")
                out.notes.append(_problem(rule.source, label, f"same rule id as {where}: this copy is skipped"))
                continue
            first_source[str(rule.id)] = rule.source
        try:
            if isinstance(rule, SigmaCorrelationRule):
                check_correlation(rule)
                _resolve(rule, lookup)
                out.correlations.append(compile_correlation(rule, attack))
            elif isinstance(rule, SigmaRule):
                if pipeline is not None:
                    pipeline.apply(rule)
                compiled, note = compile_rule(rule, ctx, attack)
                out.rules.append(compiled)
                if note:
                    out.notes.append(_problem(rule.source, label, note))
            elif isinstance(rule, SigmaFilter):
                continue
        except (CompileError, SigmaError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            out.problems.append(_problem(rule.source, label, str(exc) or type(exc).__name__))
    return out


class _Lookup:
    """What `SigmaRuleReference.resolve` needs of a collection: `collection[reference]`."""

    def __init__(self, by_key: dict[str, Any]) -> None:
        self.by_key = by_key

    def __getitem__(self, key: str) -> Any:
        from sigma.exceptions import SigmaRuleNotFoundError

        try:
            return self.by_key[str(key)]
        except KeyError:
            raise SigmaRuleNotFoundError(f"rule {key!r} referenced by a correlation was not found") from None


def _resolve(rule: Any, lookup: _Lookup) -> None:
    for ref in rule.rules or []:
        ref.resolve(lookup)
    for alias in rule.aliases:
        for ref in alias.mapping:
            ref.resolve(lookup)


def read_files(paths: Iterable[Path]) -> tuple[list[tuple[Path, bytes]], list[Problem]]:
    """Every rule file's (path, bytes) under `paths`; a `.zip` (a rule snapshot) is read without extraction,
    its members named `<zip>/<member>`."""
    out: list[tuple[Path, bytes]] = []
    problems: list[Problem] = []
    plain: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_file() and path.suffix.lower() == ".zip":
            out.extend(_zip_members(path, problems))
        else:
            plain.append(path)
    files, missing = rule_files(plain)
    problems.extend(missing)
    for path in files:
        try:
            out.append((path, path.read_bytes()))
        except OSError as exc:
            problems.append(Problem(Location(str(path)), f"cannot read: {exc.strerror}", "a readable file"))
    return out, problems


def is_rule_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" and path.is_file()


def zip_fingerprint(path: Path) -> str:
    """A rule zip's content key from its central directory (member names, CRC-32s and sizes): a cached rule
    set is found without decompressing the archive. '' when it cannot be read (the files are then read)."""
    import zipfile

    digest = hashlib.blake2b(digest_size=16)
    try:
        with zipfile.ZipFile(path) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                digest.update(f"{info.filename}\x00{info.CRC:08x}\x00{info.file_size}\x01".encode())
    except (OSError, zipfile.BadZipFile):
        return ""
    return digest.hexdigest()


def _zip_members(path: Path, problems: list[Problem]) -> list[tuple[Path, bytes]]:
    import zipfile

    out: list[tuple[Path, bytes]] = []
    try:
        with zipfile.ZipFile(path) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                name = info.filename
                if info.is_dir() or "__MACOSX" in name or Path(name).name.startswith("._"):
                    continue
                if Path(name).suffix.lower() in RULE_SUFFIXES:
                    out.append((path / name, zf.read(info)))
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        problems.append(Problem(Location(str(path)), f"cannot read the rule archive: {exc}", "a zip of Sigma rules"))
    return out
