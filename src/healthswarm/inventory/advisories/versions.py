"""Version rules of advisories and the comparison of vendor versions.

Medical-device versions are not PEP 440 nor semver ("A.10.12", "2.4A", "BT06", "1.8.4 Service
Pack 01", "R4.1L1", "12.2.x.x"), so neither `packaging` (rejects most of them) nor `univers` (one
scheme per package ecosystem, none for vendor firmware) fits; the comparison here is our own,
rpm-like: numeric segments compare as numbers, letter segments as text, and a version whose first
segment is of another kind (a letter scheme against a numeric one) is *incomparable*, which the
matcher reports as "possibly affected" instead of guessing.

Rules come in three dialects, all turned into one `Rule`:
- purl `vers:` expressions (`vers:generic/>=1.0|<2.0`, `vers:all/*`), evaluated with the spec's
  algorithm;
- the free text of CSAF `product_version(_range)` names ("<= 3.1", ">= 1.0 | <= 1.3", "2.3.6 and
  below", "prior to 4.2", "All versions", "3.0|3.1", "12.x"), read as a union of the constraints
  in written order (adjacent lower and upper bounds form an interval);
- CVE JSON 5 `version` / `lessThan` / `lessThanOrEqual`, which `cve5.py` writes as `vers:` text.
Nothing here raises on any input: what cannot be read becomes an UNKNOWN rule or verdict.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from urllib.parse import unquote

Segment = int | str

# Words that name a later build of the same release: "1.0 SP2" > "1.0", but < "1.0.1".
_POST_WORDS = frozenset({"sp", "build", "b", "update", "u", "patch", "p", "sr", "mr", "hotfix", "hf", "r", "rev",
                         "release", "edition", "fp", "cu"})
# Words that name an earlier build of the release they precede: "2.0 rc1" < "2.0".
_PRE_WORDS = frozenset({"alpha", "beta", "rc", "pre", "preview", "dev", "snapshot"})
# Words a bare version may carry and still be read as a version.
_VERSION_WORDS = _POST_WORDS | _PRE_WORDS | {"nd", "rd", "th", "st", "x"}
_UNKNOWN_TEXT = frozenset({"", "unknown", "n/a", "na", "none", "-", "?", "unk", "tbd", "various", "latest"})

_REPLACEMENTS = (
    (re.compile(r"service\s*pack"), "sp"),
    (re.compile(r"\bversion\b|\bver\.?(?=\s|\d)"), " "),
    (re.compile(r"^\s*v(?=\d)"), ""),
)
_SEGMENT = re.compile(r"\d+|[a-z]+|\*")
_MONTHS = re.compile(
    r"\b(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?"
    r"|nov(ember)?|dec(ember)?)\b|\d{1,2}/\d{1,2}/\d{2,4}|\b(distributed|shipped|manufactured)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Version:
    """A parsed version: its segments, and whether it ends in a wildcard ("12.x", "5.x.x")."""

    text: str
    segments: tuple[Segment, ...]
    wildcard: bool = False

    def __str__(self) -> str:
        return self.text


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip().lower()
    for pattern, repl in _REPLACEMENTS:
        text = pattern.sub(repl, text)
    return text.strip()


@lru_cache(maxsize=65536)
def parse_version(text: str) -> Version | None:
    """Read a version; None when there is nothing to compare (empty, "unknown", punctuation only)."""
    if not isinstance(text, str):
        return None
    norm = _normalise(text)
    if norm in _UNKNOWN_TEXT:
        return None
    raw: list[Segment] = [int(s) if s.isdigit() else s for s in _SEGMENT.findall(norm)]
    if not raw:
        return None
    # A trailing run of "x"/"*" segments is a wildcard ("12.2.x.x", "C.0x"); an inner "x" is a letter ("x12").
    cut = len(raw)
    while cut > 0 and raw[cut - 1] in ("x", "*"):
        cut -= 1
    wildcard = cut < len(raw)
    if wildcard and cut > 1 and re.search(r"\d[x*]+$", norm):
        # "C.0x" is C.00 to C.09: the digits glued to the x are a partial segment, so compare on "C" only
        cut -= 1
    if cut == 0:
        return None
    return Version(text.strip(), tuple(raw[:cut]), wildcard=wildcard)


def is_version_like(text: str) -> bool:
    """Whether a bare item of a rule reads as a version rather than prose or a model name.

    "1.1.3 MR Build 11", "BT03", "K", "2nd Edition" are versions; "Accu-Chek Inform II",
    "882160 Gemini Dual", "MMT-512 / MMT-712 Paradigm x12" are not (they are compared as text).
    """
    norm = _normalise(text)
    words = norm.split()
    if not words or len(words) > 4:
        return False
    for word in words:
        if any(c.isdigit() for c in word) and re.fullmatch(r"[\w.\-+*]+", word):
            continue
        if word in _VERSION_WORDS or re.fullmatch(r"[a-z]{1,2}", word):
            continue
        return False
    return True


def _kind(segment: Segment) -> str:
    return "num" if isinstance(segment, int) else "word"


def _tail_order(rest: tuple[Segment, ...]) -> int:
    """How a version with extra segments `rest` compares with the same version without them."""
    first = rest[0]
    if isinstance(first, int):
        return 0 if all(s == 0 for s in rest if isinstance(s, int)) and all(isinstance(s, int) for s in rest) else 1
    return -1 if first in _PRE_WORDS else 1


def compare(a: Version, b: Version) -> int | None:
    """-1, 0 or 1; None when the two are of different schemes and cannot be ordered.

    A wildcard on either side limits the comparison to the wildcard's prefix ("12.2.7" == "12.2.x").
    """
    sa, sb = a.segments, b.segments
    if b.wildcard:
        sa = sa[: len(sb)]
    if a.wildcard:
        sb = sb[: len(sa)]
    if _kind(sa[0]) != _kind(sb[0]):
        return None
    for x, y in zip(sa, sb, strict=False):
        if x == y:
            continue
        if isinstance(x, int) and isinstance(y, int):
            return -1 if x < y else 1
        if isinstance(x, str) and isinstance(y, str):
            # pre-release words sort before everything else, e.g. "2.0 rc1" < "2.0 sp1"
            if (x in _PRE_WORDS) != (y in _PRE_WORDS):
                return -1 if x in _PRE_WORDS else 1
            return -1 if x < y else 1
        # a number against a word at the same place: rpm's rule, numbers are newer ("2.4.1" > "2.4a")
        return 1 if isinstance(x, int) else -1
    if len(sa) == len(sb):
        return 0
    if len(sa) > len(sb):
        return _tail_order(sa[len(sb):])
    return -_tail_order(sb[len(sa):])


class Verdict(StrEnum):
    AFFECTED = "affected"
    NOT_AFFECTED = "not-affected"
    UNKNOWN = "unknown"  # rule or version cannot be decided: the matcher says "possibly affected"


class RuleKind(StrEnum):
    ALL = "all"  # every version
    CONSTRAINTS = "constraints"  # comparisons and equalities
    TEXT = "text"  # an exact name that is not a version ("Accu-Chek Inform II")
    UNKNOWN = "unknown"  # prose the matcher cannot decide (dates, conditions)


@dataclass(frozen=True, slots=True)
class Constraint:
    op: str  # "=", "!=", "<", "<=", ">", ">="
    version: Version

    def __str__(self) -> str:
        return f"{self.op} {self.version}"


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    kind: RuleKind
    constraints: tuple[Constraint, ...] = ()
    # True for `vers:` expressions (spec algorithm); False for CSAF text (union in written order)
    vers: bool = False
    # text removed from the rule: "(end-of-life 2011)", "on Windows 8.1 with IIS 7.5", ...
    qualifier: str = ""
    # the qualifier is a condition the matcher cannot check (hardware module, OS, model): a version
    # inside the range then gives "possibly affected", not "affected"
    conditional: bool = False
    reason: str = ""

    def describe(self) -> str:
        if self.kind is RuleKind.ALL:
            return "all versions"
        if self.kind is RuleKind.CONSTRAINTS:
            return " | ".join(str(c) for c in self.constraints)
        if self.kind is RuleKind.TEXT:
            return f"exactly {self.text!r}"
        return f"not machine-readable: {self.reason}"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    how: str


_OPS = ("<=", ">=", "!=", "==", "<", ">", "=")
_NOTE = re.compile(r"end[- ]of[- ]life|\beol\b|integrated into|discontinued|obsolete|no longer supported", re.I)
_TRAILING = re.compile(r"\s+(on|with|running|for|including|shipped|model)\s+.*$", re.I)
_WORD_FORMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(.+?)\s+(and|or)\s+(below|earlier|prior|older|lower|before)$", re.I), r"<= \1"),
    (re.compile(r"^(.+?)\s+(and|or)\s+(above|later|newer|higher|after)$", re.I), r">= \1"),
    (re.compile(r"^(prior to|before|earlier than|older than|below|lower than|less than)\s+(.+)$", re.I), r"< \2"),
    (re.compile(r"^(up to( and including)?|through|until|at most)\s+(.+)$", re.I), r"<= \3"),
    (re.compile(r"^(from|since|at least)\s+(.+?)\s+(to|through|until)\s+(.+)$", re.I), r">= \2 | <= \4"),
    (re.compile(r"^(from|since|at least)\s+(.+)$", re.I), r">= \2"),
    (re.compile(r"^(\S+)\s+(to|through|–|-)\s+(\S+)$", re.I), r">= \1 | <= \3"),
    # infix bounds as CISA writes them: "A.01 <= C.0x", "A10 < A11"
    (re.compile(r"^([^<>=\s]+)\s*(<=?)\s*([^<>=\s]+)$", re.I), r">= \1 | \2 \3"),
)


def _strip_qualifiers(text: str) -> tuple[str, str]:
    """Split off parenthetical and trailing qualifiers; keep a fully parenthesised rule's content."""
    qualifiers: list[str] = []
    core = text
    for _ in range(10):  # innermost-first removal of nested parentheses, bounded
        inner = re.search(r"\(([^()]*)\)", core)
        if inner is None:
            break
        qualifiers.append(inner.group(1).strip())
        core = (core[: inner.start()] + " " + core[inner.end():]).strip()
    core = re.sub(r"[()]", " ", core).strip()
    if not core.strip(" |") and qualifiers:
        # "(Release 1.3.2 1.4.0 1.4.1)": the whole rule was in parentheses
        return qualifiers[-1], ""
    trailing = _TRAILING.search(core)
    if trailing and trailing.start() > 0:
        qualifiers.append(core[trailing.start():].strip())
        core = core[: trailing.start()].strip()
    return core, "; ".join(q for q in reversed(qualifiers) if q)


def _constraint(piece: str) -> Constraint | str:
    """One `op version` piece; the text of the problem when it is not one."""
    piece = piece.strip()
    op = "="
    for candidate in _OPS:
        if piece.startswith(candidate):
            op = "=" if candidate == "==" else candidate
            piece = piece[len(candidate):].strip()
            break
    if not piece:
        return "an operator without a version"
    version = parse_version(piece)
    if version is None or (op == "=" and not is_version_like(piece)) or (op != "=" and not _readable(piece)):
        return f"{piece!r} is not a version"
    return Constraint(op, version)


def _readable(piece: str) -> bool:
    return is_version_like(piece) or bool(re.fullmatch(r"[\w.\-+*]+", _normalise(piece)))


def _vers(text: str) -> Rule:
    body = text.split(":", 1)[1]
    scheme, _, spec = body.partition("/")
    scheme = scheme.lower()
    spec = spec.strip()
    if not scheme or not spec:
        return Rule(text, RuleKind.UNKNOWN, reason="a vers: expression needs vers:<scheme>/<constraints>")
    if spec == "*":
        return Rule(text, RuleKind.ALL, vers=True)
    constraints: list[Constraint] = []
    for piece in spec.split("|"):
        c = _constraint(unquote(piece))
        if isinstance(c, str):
            return Rule(text, RuleKind.UNKNOWN, vers=True, reason=c)
        constraints.append(c)
    return Rule(text, RuleKind.CONSTRAINTS, tuple(constraints), vers=True)


@lru_cache(maxsize=8192)
def parse_rule(text: str) -> Rule:
    """Read a rule as written in an advisory; never raises."""
    if not isinstance(text, str):
        return Rule(str(text), RuleKind.UNKNOWN, reason="not text")
    raw = unicodedata.normalize("NFKC", " ".join(text.replace("≤", "<=").replace("≥", ">=").split()))
    low = raw.lower()
    if low == "":
        # CSAF names a product without a version branch: the status covers the product whole
        return Rule(raw, RuleKind.ALL, reason="no version given")
    if low.startswith("vers:"):
        return _vers(raw)
    if re.fullmatch(r"(all|any|every)( (versions?|releases?|models?))?|\*", low):
        return Rule(raw, RuleKind.ALL)
    if low.startswith("*"):
        qualifier = raw.lstrip("* ").strip("() ")
        return Rule(raw, RuleKind.ALL, qualifier=qualifier, conditional=not _NOTE.search(qualifier))
    core, qualifier = _strip_qualifiers(raw)
    conditional = bool(qualifier) and not _NOTE.search(qualifier)
    if _MONTHS.search(core):
        return Rule(raw, RuleKind.UNKNOWN, qualifier=qualifier,
                    reason="the rule is about dates (made, shipped or distributed), not versions")
    if not any(op in core for op in _OPS) and not re.search(r"\s(and|or|to|through)\s|\|", core):
        # a bare item: a version, a space-separated release list, or an exact name
        if is_version_like(core) and (exact := parse_version(core)) is not None:
            return Rule(raw, RuleKind.CONSTRAINTS, (Constraint("=", exact),), qualifier=qualifier,
                        conditional=conditional)
        words = re.sub(r"^release\s+", "", core, flags=re.I).split()
        if len(words) > 1 and all(re.fullmatch(r"\d+(\.\d+)+", w) for w in words):
            return Rule(raw, RuleKind.CONSTRAINTS, tuple(Constraint("=", parse_version(w)) for w in words),  # type: ignore[arg-type]
                        qualifier=qualifier, conditional=conditional)
        return Rule(raw, RuleKind.TEXT, qualifier=qualifier, conditional=conditional)
    constraints: list[Constraint] = []
    for piece in re.split(r"\|", core):
        piece = piece.strip()
        if not piece:
            continue
        expanded = _expand_words(piece)
        for sub in expanded.split("|"):
            c = _constraint(sub)
            if isinstance(c, str):
                return Rule(raw, RuleKind.UNKNOWN, qualifier=qualifier, reason=c)
            constraints.append(c)
    if not constraints:
        return Rule(raw, RuleKind.UNKNOWN, qualifier=qualifier, reason="no version in the rule")
    return Rule(raw, RuleKind.CONSTRAINTS, tuple(constraints), qualifier=qualifier, conditional=conditional)


def _expand_words(piece: str) -> str:
    """Rewrite the word forms of one piece ("2.3.6 and below") as operators ("<= 2.3.6")."""
    for pattern, repl in _WORD_FORMS:
        if pattern.match(piece):
            return pattern.sub(repl, piece)
    # "2131 and 2141": a list of versions
    parts = re.split(r"\s+and\s+|\s*,\s*", piece)
    if len(parts) > 1 and all(is_version_like(p) for p in parts):
        return "|".join(parts)
    return piece


def cve5_rule(version: str, less_than: str = "", less_than_or_equal: str = "", scheme: str = "generic") -> str:
    """A CVE JSON 5 `versions[]` item as a `vers:` expression (kept as the entry's rule text)."""
    scheme = re.sub(r"[^a-z0-9.+-]", "", (scheme or "generic").lower()) or "generic"
    version = (version or "").strip()
    low_open = version in ("", "0", "*", "-")
    if less_than.strip() == "*" or (low_open and less_than.strip() in ("", "*") and not less_than_or_equal.strip()):
        return f"vers:{scheme}/*" if low_open else f"vers:{scheme}/>={version}"
    parts = [] if low_open else [f">={version}"]
    if less_than.strip():
        parts.append(f"<{less_than.strip()}")
    elif less_than_or_equal.strip():
        parts.append(f"<={less_than_or_equal.strip()}")
    else:
        parts = [version]
    return f"vers:{scheme}/" + "|".join(parts)


def _holds(op: str, order: int) -> bool:
    return {"=": order == 0, "!=": order != 0, "<": order < 0, "<=": order <= 0, ">": order > 0,
            ">=": order >= 0}[op]


def evaluate(rule: Rule, asset_version: str) -> Decision:
    """Whether `asset_version` lies inside `rule`; UNKNOWN with the reason when it cannot be told."""
    if rule.kind is RuleKind.UNKNOWN:
        return Decision(Verdict.UNKNOWN, f"rule {rule.text!r} is not machine-readable ({rule.reason})")
    if rule.kind is RuleKind.ALL:
        if rule.conditional:
            return Decision(Verdict.UNKNOWN, f"all versions, but only under a condition that cannot be checked: "
                                             f"{rule.qualifier!r}")
        return Decision(Verdict.AFFECTED, "the rule covers all versions")
    version = parse_version(asset_version)
    if rule.kind is RuleKind.TEXT:
        if version is not None and _normalise(asset_version) == _normalise(rule.text):
            return _conditional(rule, Decision(Verdict.AFFECTED, f"version equals {rule.text!r}"))
        return Decision(Verdict.UNKNOWN, f"the rule names {rule.text!r}, not a version; "
                                         f"asset version {asset_version!r} cannot be checked against it")
    if version is None:
        return Decision(Verdict.UNKNOWN, f"asset version {asset_version!r} is unknown; rule is {rule.describe()}")
    decision = _vers_contains(rule, version) if rule.vers else _union_contains(rule, version)
    return _conditional(rule, decision)


def _conditional(rule: Rule, decision: Decision) -> Decision:
    if decision.verdict is Verdict.AFFECTED and rule.conditional:
        return Decision(Verdict.UNKNOWN, f"{decision.how}, but the rule adds a condition that cannot be checked: "
                                         f"{rule.qualifier!r}")
    return decision


def _union_contains(rule: Rule, v: Version) -> Decision:
    """CSAF text: adjacent lower+upper bounds form an interval; every other constraint stands alone."""
    cs = list(rule.constraints)
    groups: list[tuple[Constraint, ...]] = []
    i = 0
    while i < len(cs):
        if cs[i].op in (">", ">=") and i + 1 < len(cs) and cs[i + 1].op in ("<", "<="):
            groups.append((cs[i], cs[i + 1]))
            i += 2
        else:
            groups.append((cs[i],))
            i += 1
    orders = {id(c): compare(v, c.version) for c in cs}
    if all(order is None for order in orders.values()):
        # none of the rule's versions is of the asset's scheme ("1.2" against "< B.06.18")
        return Decision(Verdict.UNKNOWN, f"version {v} cannot be compared with the rule's versions "
                                         f"(different version schemes); rule is {rule.describe()}")
    for group in groups:
        # a constraint of another scheme than the asset's version cannot hold for it
        if all((order := orders[id(c)]) is not None and _holds(c.op, order) for c in group):
            return Decision(Verdict.AFFECTED, f"{v} satisfies {' and '.join(f'{c}' for c in group)}")
    return Decision(Verdict.NOT_AFFECTED, f"{v} is outside {rule.describe()}")


def _vers_contains(rule: Rule, v: Version) -> Decision:
    """The purl vers containment algorithm (constraints sorted by version, checked pairwise)."""
    cs = list(rule.constraints)
    orders: list[int] = []
    for c in cs:
        order = compare(v, c.version)
        if order is None:
            return Decision(Verdict.UNKNOWN, f"version {v} cannot be compared with {c.version} "
                                             f"(different version schemes); rule is {rule.text}")
        orders.append(order)
    for c, order in zip(cs, orders, strict=True):
        if order == 0 and c.op in ("=", "<=", ">="):
            return Decision(Verdict.AFFECTED, f"{v} equals the bound of {c}")
        if order == 0 and c.op == "!=":
            return Decision(Verdict.NOT_AFFECTED, f"{v} is excluded by {c}")
    ranged = [c for c in cs if c.op not in ("=", "!=")]
    try:
        ranged = _sorted(ranged)
    except _Incomparable as exc:
        return Decision(Verdict.UNKNOWN, f"the rule's own versions cannot be ordered ({exc}); rule is {rule.text}")
    if len(ranged) == 1:
        c = ranged[0]
        order = compare(v, c.version)
        if order is not None and _holds(c.op, order):
            return Decision(Verdict.AFFECTED, f"{v} satisfies {c}")
        return Decision(Verdict.NOT_AFFECTED, f"{v} is outside {rule.text}")
    for index, (cur, nxt) in enumerate(pairwise(ranged)):
        below_cur = (compare(v, cur.version) or 0) < 0
        above_nxt = (compare(v, nxt.version) or 0) > 0
        if index == 0 and cur.op in ("<", "<=") and below_cur:
            return Decision(Verdict.AFFECTED, f"{v} is below {cur}")
        if index == len(ranged) - 2 and nxt.op in (">", ">=") and above_nxt:
            return Decision(Verdict.AFFECTED, f"{v} is above {nxt}")
        if cur.op in (">", ">=") and nxt.op in ("<", "<=") and (compare(v, cur.version) or 0) > 0 and \
                (compare(v, nxt.version) or 0) < 0:
            return Decision(Verdict.AFFECTED, f"{v} lies between {cur} and {nxt}")
    return Decision(Verdict.NOT_AFFECTED, f"{v} is outside {rule.text}")


class _Incomparable(Exception):
    pass


def _sorted(constraints: list[Constraint]) -> list[Constraint]:
    # insertion sort with a comparison that may fail: only a handful of constraints per rule
    out: list[Constraint] = []
    for c in constraints:
        pos = len(out)
        for i, existing in enumerate(out):
            order = compare(c.version, existing.version)
            if order is None:
                raise _Incomparable(f"{c.version} against {existing.version}")
            if order < 0:
                pos = i
                break
        out.insert(pos, c)
    return out


@lru_cache(maxsize=65536)
def rule_matches(rule_text: str, asset_version: str) -> Decision:
    """Parse `rule_text` and evaluate it for `asset_version` (cached: fleets share a few versions)."""
    return evaluate(parse_rule(rule_text), asset_version)
