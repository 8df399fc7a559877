"""Sanitising a STIX bundle before it leaves: a policy per TLP level and peer group.

Every string of every object (except the structural ones: ids, types, references, timestamps) is
scrubbed by two means: a dictionary of the values the organisation knows to be sensitive (inventory
and events, see `sensitive`), matched case-insensitively with Aho-Corasick, and patterns (internal
addresses, internal host names by suffix, e-mail addresses of internal domains, user names in file
paths and DOMAIN\\user, MRNs, accession numbers, patient ids, HL7 PID segments). Matches become keyed
pseudonyms (`host-1f2e…`, HMAC-SHA256 with the workspace key) or `[redacted]`; internal addresses
are dropped, pseudonymised, or Crypto-PAn-anonymised for trusted groups.

Observables and indicators whose subject is internal (an internal address, an internal host name, a
user account) are dropped whole; references to dropped objects are removed and objects left without
a required reference are dropped in turn. Public indicators — external addresses, domains, URLs,
hashes, CVEs, ATT&CK ids, device models — pass untouched.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import ahocorasick

from healthswarm.share.cryptopan import CryptoPAn
from healthswarm.share.ids import parse_stamp, sco_id, stamp, stamp_any
from healthswarm.share.markings import TLP_ORDER, normalise_tlp
from healthswarm.share.patterns import escape, parse_simple, without_query
from healthswarm.share.secrets import Pseudonymiser
from healthswarm.share.sensitive import Sensitive

GROUPS = ("public", "sector", "trusted")


@dataclass(frozen=True)
class Policy:
    """What happens to each kind of sensitive content.

    `names`: "pseudonym" (keyed token, lets a peer correlate across bundles from us) or "redact";
    `addresses`: "drop" (removed), "pseudonym", or "cryptopan" (prefix-preserving, trusted groups only);
    `free_text`: "scrub" or "drop" (descriptions, note contents and abstracts withheld);
    `coarsen`: None, "hour" or "day" (timestamps floored; `valid_until` ceiled);
    `url_queries`: keep URLs' query strings and fragments (off: they are cut, since identifiers travel there).
    """

    group: str
    tlp: str
    names: str = "pseudonym"
    addresses: str = "drop"
    free_text: str = "scrub"
    coarsen: str | None = None
    url_queries: bool = False

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"peer group {self.group!r} is not one of {', '.join(GROUPS)}")
        if self.names not in {"pseudonym", "redact"}:
            raise ValueError(f"names policy {self.names!r}: expected pseudonym or redact")
        if self.addresses not in {"drop", "pseudonym", "cryptopan"}:
            raise ValueError(f"addresses policy {self.addresses!r}: expected drop, pseudonym or cryptopan")
        if self.addresses == "cryptopan" and self.group != "trusted":
            raise ValueError("Crypto-PAn keeps subnet structure: only for the trusted group")
        if self.free_text not in {"scrub", "drop"}:
            raise ValueError(f"free-text policy {self.free_text!r}: expected scrub or drop")
        if self.coarsen not in {None, "hour", "day"}:
            raise ValueError(f"coarsen {self.coarsen!r}: expected hour or day")


# the most a group may receive, and its defaults
_GROUP_MAX_TLP = {"public": "clear", "sector": "amber", "trusted": "red"}


def policy_for(tlp: str, group: str, coarsen: str | None = None, addresses: str | None = None) -> Policy:
    """The default policy of a TLP level for a peer group (overrides for coarsening and addresses).

    public (TLP:CLEAR only): names redacted, free text dropped, internal addresses dropped, days.
    sector (up to TLP:AMBER): pseudonyms, free text scrubbed, addresses dropped; TLP:CLEAR/GREEN hours.
    trusted (any TLP): pseudonyms, free text scrubbed, internal addresses Crypto-PAn-anonymised.
    """
    level = normalise_tlp(tlp)
    if group not in GROUPS:
        raise ValueError(f"peer group {group!r} is not one of {', '.join(GROUPS)}")
    if TLP_ORDER.index(level) > TLP_ORDER.index(_GROUP_MAX_TLP[group]):
        raise ValueError(f"TLP:{level.upper()} may not go to the {group} group "
                         f"(at most TLP:{_GROUP_MAX_TLP[group].upper()})")
    if group == "public":
        base = Policy(group, level, names="redact", addresses="drop", free_text="drop", coarsen="day")
    elif group == "sector":
        base = Policy(group, level, names="pseudonym", addresses="drop", free_text="scrub",
                      coarsen="hour" if level in {"clear", "green"} else None)
    else:
        base = Policy(group, level, names="pseudonym", addresses="cryptopan", free_text="scrub")
    return Policy(base.group, base.tlp, base.names, addresses or base.addresses, base.free_text,
                  coarsen if coarsen is not None else base.coarsen)


STRUCTURAL = frozenset({
    "type", "id", "spec_version", "created", "modified", "created_by_ref", "object_marking_refs",
    "pattern_type", "pattern_version", "valid_from", "valid_until", "first_seen", "last_seen", "first_observed",
    "last_observed", "published", "extension_type", "indicator_types", "report_types", "identity_class",
    "relationship_type", "hashes", "tlp_2_0", "pap", "confidence", "count", "number_observed", "lang",
    # the gate's own signature (share/signing.py SIGNATURE): key id, random nonce, value; a random nonce
    # decodes, now and then, to text shaped like a patient id
    "x_healthswarm_signature",
})
_FREE_TEXT = ("description", "content", "explanation")  # names, titles, abstracts stay (scrubbed)
_TIMESTAMPS = ("created", "modified", "first_seen", "last_seen", "first_observed", "last_observed",
               "valid_from", "published")
_REQUIRED_REFS = {"relationship": ("source_ref", "target_ref"), "sighting": ("sighting_of_ref",)}
_REQUIRED_LISTS = {"observed-data": "object_refs", "note": "object_refs", "report": "object_refs",
                   "grouping": "object_refs", "opinion": "object_refs"}
_ALWAYS_DROP_SCO = frozenset({"user-account", "mac-addr", "windows-registry-key", "process", "directory"})
WITHHELD = "[withheld by sharing policy]"
PSEUDONYM = re.compile(r"^(?:user|host|patient|email|ip|asset|address)-[0-9a-f]{16}$")
REDACTED = "[redacted]"

IPV4 = r"(?<![\w.])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?!\w|\.\d)"
IPV6 = r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"
PATTERNS = [
    ("pid", r"\bPID\|[^\r\n\"]*"),
    ("winpath", r"(?i)\b[A-Z]:[\\/](?:Users|Documents and Settings)[\\/](?P<winuser>[^\\/:*?\"<>|\r\n\s]+)"),
    ("unixpath", r"(?<![\w.])/(?:home|Users)/(?P<unixuser>[^/\s\"']+)"),
    # the keywords must not sit inside a word or a pseudonym ("user-acc516f…" is no accession number)
    ("mrn", r"(?i)(?<![\w.-])(?:MRN|medical[ _-]record[ _-](?:number|no\.?|id))[\s:#=_-]*"
            r"(?P<mrn>[A-Za-z0-9][A-Za-z0-9-]{2,})"),
    ("accession", r"(?i)(?<![\w.-])(?:accession(?:[ _-]?(?:number|no\.?|id))?|ACC(?:N|#|NO)?)[\s:#=_-]*"
                  r"(?P<accession>[A-Za-z0-9]*\d[A-Za-z0-9-]{2,})"),
    ("patientid", r"(?i)(?<![\w.-])patient[ _-]?(?:id|identifier|number|no\.?)[\s:#=_-]*"
                  r"(?P<patientid>[A-Za-z0-9][A-Za-z0-9-]{2,})"),
    ("domainuser", r"\b(?P<ntdomain>[A-Z][A-Z0-9-]{1,14})\\(?P<ntuser>[A-Za-z0-9._$-]{2,})"),
    ("email", r"\b(?P<emuser>[A-Za-z0-9._%+-]+)@(?P<emdomain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\b"),
    ("ipv4", IPV4),
    ("ipv6", IPV6),
]


_ALL_PATTERNS = ("fqdn", *(name for name, _rx in PATTERNS))
# what each pattern cannot match without (ASCII text): a patient-id keyword (never a "patient-<hex>" pseudonym),
# an upper-case NT domain's last character before a backslash and two of a user name's, two colons with at
# most four hex digits between them, a dot between digits. Each starts with a literal, which `re` looks for
# fast; `\d` (any Unicode digit) in the first place would be a category lookup at every position.
_PATIENT_KEYWORD = re.compile(r"patient[ _-]?(?:id|number|no)")
_DOMAIN_USER = re.compile(r"\\(?<=[A-Z0-9-]\\)[A-Za-z0-9._$-]{2}")
_TWO_COLONS = re.compile(r":[0-9A-Fa-f]{0,4}:")
_DIGIT_DOT_DIGIT = re.compile(r"\.(?<=[0-9]\.)[0-9]")
# the probes whose match is a pattern's landmark, and how far before it the pattern's match may start
_LANDMARKS = {"patientid": (_PATIENT_KEYWORD, 0), "domainuser": (_DOMAIN_USER, 15), "ipv4": (_DIGIT_DOT_DIGIT, 3),
              "ipv6": (_TWO_COLONS, 4)}


class SuffixProbe:
    """Whether a lower-cased text holds any of the internal suffixes: one Aho-Corasick pass (an alternation
    of a dozen words in `re` is tried at every position, and cost more than the patterns it spared)."""

    def __init__(self, suffixes: Iterable[str]) -> None:
        self._automaton = ahocorasick.Automaton()
        self._always = False  # an empty suffix is in every text
        for suffix in suffixes:
            self._always |= not suffix
            if suffix:
                self._automaton.add_word(suffix, suffix)
        if len(self._automaton):
            self._automaton.make_automaton()

    def search(self, lowered: str) -> bool:
        return self._always or next(self._automaton.iter(lowered), None) is not None


def triggered(text: str, lowered: str, suffix_probe: SuffixProbe | None) -> tuple[str, ...]:
    """The patterns that can match `text` at all: each needs a character or word that is cheap to look for.

    Running only those keeps the common string, a title or a name with nothing sensitive in it, from
    paying for eleven patterns at every position (the sanitiser and the leak check both use it). Text that
    is not ASCII runs them all: case-insensitive matching folds "ſ", "K" and "İ" onto ASCII letters that the
    lower-cased text does not contain."""
    if not text.isascii():
        return _ALL_PATTERNS if suffix_probe is not None else _ALL_PATTERNS[1:]
    names = []
    if suffix_probe is not None and suffix_probe.search(lowered):
        names.append("fqdn")
    if "pid|" in lowered:
        names.append("pid")
    if (":\\" in text or ":/" in text) and ("users" in lowered or "documents and settings" in lowered):
        names.append("winpath")
    if "/home/" in text or "/Users/" in text:
        names.append("unixpath")
    if "mrn" in lowered or "medical" in lowered:
        names.append("mrn")
    if "acc" in lowered:
        names.append("accession")
    if "patient" in lowered and _PATIENT_KEYWORD.search(lowered):
        names.append("patientid")
    if _DOMAIN_USER.search(text):
        names.append("domainuser")
    if "@" in text:
        names.append("email")
    if _DIGIT_DOT_DIGIT.search(text):
        names.append("ipv4")
    if _TWO_COLONS.search(text):
        names.append("ipv6")
    return tuple(names)


def earliest_match(text: str, lowered: str, names: tuple[str, ...]) -> int:
    """A position before which none of the patterns `names` can start a match in `text`: each match begins at,
    or at most a few characters before, the landmark its probe in `triggered` found (a drive letter before
    ":\\", up to 15 characters of NT domain before "\\", 3 digits before an address's first dot, 4 hex digits
    before an IPv6 address's first colon pair). 0 where that is unbounded (host names, e-mail users) or the
    text is not ASCII. On a long alert text the patterns then skip most of it."""
    if not text.isascii() or "fqdn" in names or "email" in names:
        return 0
    earliest = len(text)
    for name in names:
        if name == "pid":
            at = lowered.find("pid|")
        elif name == "winpath":
            at = min((p for p in (text.find(":\\"), text.find(":/")) if p >= 0), default=1) - 1
        elif name == "unixpath":
            at = min((p for p in (text.find("/home/"), text.find("/Users/")) if p >= 0), default=0)
        elif name == "mrn":
            at = min((p for p in (lowered.find("mrn"), lowered.find("medical")) if p >= 0), default=0)
        elif name == "accession":
            at = lowered.find("acc")
        elif name in _LANDMARKS:
            pattern, before = _LANDMARKS[name]
            found = pattern.search(lowered if name == "patientid" else text)
            at = found.start() - before if found else 0
        else:
            return 0
        earliest = min(earliest, at)
    return max(0, earliest)


@dataclass
class SanitiseReport:
    """What the sanitiser did (counts only: the report never repeats a sensitive value)."""

    replaced: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    objects_in: int = 0
    objects_out: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"objects_in": self.objects_in, "objects_out": self.objects_out,
                "replaced": dict(self.replaced), "dropped": dict(self.dropped)}


class Sanitiser:
    def __init__(self, policy: Policy, known: Sensitive, pseudonymiser: Pseudonymiser) -> None:
        self.policy = policy
        self.known = known
        self.pseudo = pseudonymiser
        self.cryptopan = CryptoPAn(pseudonymiser.derive("crypto-pan")) if policy.addresses == "cryptopan" else None
        self._automaton = ahocorasick.Automaton()
        for kind, value in known.values():
            if kind == "address":
                continue  # addresses are found by pattern (with their internal-ness checked)
            self._automaton.add_word(value.lower(), (kind, len(value)))
        self._has_words = len(self._automaton) > 0
        if self._has_words:
            self._automaton.make_automaton()
        self._suffixes = sorted({s.lower() for s in known.suffixes}, key=len, reverse=True)
        self._patterns = dict(PATTERNS)
        if self._suffixes:
            self._patterns["fqdn"] = (r"(?i)(?<![\w.-])(?P<fqdn>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\.(?:"
                                      + "|".join(re.escape(x) for x in self._suffixes) + r"))(?![\w-])")
        self._order = _ALL_PATTERNS
        self._suffix_probe = SuffixProbe(self._suffixes) if self._suffixes else None
        self._compiled: dict[tuple[str, ...], re.Pattern[str]] = {}
        self._kept_keys: dict[str, bool] = {}  # property name -> passes unscrubbed (structural or a reference)
        self._clean: set[str] = set()  # strings of the bundle being sanitised that scrubbing left as they were
        self.report = SanitiseReport()

    def _triggered(self, text: str, lowered: str) -> tuple[str, ...]:
        return triggered(text, lowered, self._suffix_probe)

    def _regex_for(self, names: tuple[str, ...]) -> re.Pattern[str]:
        compiled = self._compiled.get(names)
        if compiled is None:
            compiled = self._compiled[names] = re.compile(
                "|".join(f"(?P<k_{n}>{scoped(self._patterns[n])})" for n in self._order if n in names))
        return compiled

    # -- values --------------------------------------------------------------------------------
    def _name(self, kind: str, value: str) -> str:
        self.report.replaced[kind] += 1
        return self.pseudo.token(kind, value) if self.policy.names == "pseudonym" else REDACTED

    def address(self, text: str) -> str | None:
        """An internal address as the policy wants it (None: drop)."""
        if self.policy.addresses == "cryptopan" and self.cryptopan is not None:
            self.report.replaced["address-cryptopan"] += 1
            return self.cryptopan.anonymise(text.split("%", 1)[0])
        if self.policy.addresses == "pseudonym":
            self.report.replaced["address"] += 1
            return self.pseudo.token("ip", text)
        self.report.replaced["address"] += 1
        return None

    def _regex_sub(self, match: re.Match[str], kinds: set[str]) -> str:
        group = (match.lastgroup or "")[2:]
        text = match.group(0)
        if group == "fqdn":
            kinds.add("host")
            return self._name("host", text)
        if group == "pid":
            kinds.add("patient")
            self.report.replaced["hl7-pid"] += 1
            return "PID|" + REDACTED
        if group in {"winpath", "unixpath"}:
            inner = "winuser" if group == "winpath" else "unixuser"
            user = match.group(inner)
            if user.lower() in {"public", "default", "all users", "shared"} or PSEUDONYM.match(user):
                return text
            kinds.add("user")
            at = match.start(inner) - match.start()
            return text[:at] + self._name("user", user) + text[at + len(user):]
        if group in {"mrn", "accession", "patientid"}:
            value = match.group(group)
            kinds.add("patient")
            at = match.start(group) - match.start()
            return text[:at] + self._name("patient", value)
        if group == "domainuser":  # the NT domain goes too: it often names the organisation
            user = match.group("ntuser")
            kinds.add("user")
            return user if PSEUDONYM.match(user) else self._name("user", user)
        if group == "email":
            if self.known.is_internal_host(match.group("emdomain")) or match.group("emuser") in self.known.users:
                kinds.add("user")
                return self._name("email", text)
            return text
        if group in {"ipv4", "ipv6"}:
            if not self.known.is_internal_address(text):
                return text
            kinds.add("address" if self.policy.addresses != "cryptopan" else "address-cryptopan")
            replaced = self.address(text)
            return replaced if replaced is not None else REDACTED
        return text

    def scrub(self, text: str) -> tuple[str, set[str]]:
        """The text with every known sensitive value and every sensitive pattern replaced; the kinds replaced."""
        kinds: set[str] = set()
        lowered = text.lower()
        if self._has_words and len(lowered) == len(text):
            spans: list[tuple[int, int, str]] = []
            for end, (kind, length) in self._automaton.iter(lowered):
                start = end - length + 1
                if length < 6 and ((start > 0 and text[start - 1].isalnum())
                                   or (end + 1 < len(text) and text[end + 1].isalnum())):
                    continue
                spans.append((start, end + 1, kind))
            if spans:
                spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
                out, at = [], 0
                for start, end, kind in spans:
                    if start < at:
                        continue
                    out.append(text[at:start])
                    out.append(self._name(kind, text[start:end]))
                    kinds.add(kind)
                    at = end
                out.append(text[at:])
                text = "".join(out)
                lowered = text.lower()
        names = self._triggered(text, lowered)
        if names:
            # as `sub` would, from where the first match can start: lookbehinds and \b still see the text before
            out, at = [], 0
            for match in self._regex_for(names).finditer(text, earliest_match(text, lowered, names)):
                out.append(text[at:match.start()])
                out.append(self._regex_sub(match, kinds))
                at = match.end()
            if out:
                out.append(text[at:])
                text = "".join(out)
        return text, kinds

    # -- objects -------------------------------------------------------------------------------
    def _text(self, text: str) -> str:
        """A free string scrubbed; one found clean is remembered for the rest of the bundle (names, descriptions
        and labels repeat across objects), which changes nothing: a clean string is returned as it is, uncounted."""
        if text in self._clean:
            return text
        scrubbed, kinds = self.scrub(text)
        if not kinds:
            self._clean.add(text)
        return scrubbed

    def _walk(self, value: Any, key: str = "") -> Any:
        if isinstance(value, str):
            return value if key in STRUCTURAL or key.endswith("_ref") else self._text(value)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                kept = self._kept_keys.get(k)
                if kept is None:
                    kept = self._kept_keys[k] = k in STRUCTURAL or k.endswith(("_ref", "_refs"))
                out[k] = v if kept else self._text(v) if isinstance(v, str) else self._walk(v, k)
            return out
        if isinstance(value, list):
            return [self._walk(v, key) for v in value]
        return value

    def _sco(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        kind = obj["type"]
        if kind in _ALWAYS_DROP_SCO:
            self.report.dropped[kind] += 1
            return None
        if kind in {"ipv4-addr", "ipv6-addr"}:
            value = obj.get("value", "")
            if self.known.is_internal_address(value.split("/", 1)[0]):
                if self.policy.addresses != "cryptopan":
                    self.report.dropped["internal-address"] += 1
                    return None
                new = dict(obj, value=self.address(value.split("/", 1)[0]))
                new["id"] = sco_id(kind, {"value": new["value"]})
                return new
            return obj
        if kind == "domain-name" and self.known.is_internal_host(obj.get("value", "")):
            self.report.dropped["internal-host"] += 1
            return None
        if kind == "url" and not self.policy.url_queries and (cut := without_query(obj.get("value", ""))) != obj.get(
                "value"):
            self.report.replaced["url-query"] += 1
            obj = {**obj, "value": cut, "id": sco_id("url", {"value": cut})}
        cleaned = self._walk(obj)
        if cleaned != obj and kind in {"url", "email-addr", "domain-name", "file"}:
            self.report.dropped[f"{kind}-sensitive"] += 1
            return None
        return cleaned

    def _indicator(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        pattern = obj.get("pattern", "")
        simple = parse_simple(pattern) if obj.get("pattern_type") == "stix" else None
        out = self._walk({k: v for k, v in obj.items() if k != "pattern"})
        if simple is not None:
            kind, value = simple
            if kind == "url" and not self.policy.url_queries and (cut := without_query(value)) != value:
                self.report.replaced["url-query"] += 1
                pattern = pattern.replace(f"'{escape(value)}'", f"'{escape(cut)}'")
                value = cut
            if kind in {"ipv4", "ipv6"} and self.known.is_internal_address(value.split("/", 1)[0]):
                if self.policy.addresses != "cryptopan":
                    self.report.dropped["internal-indicator"] += 1
                    return None
                anon = self.address(value.split("/", 1)[0]) or ""
                out["pattern"] = pattern.replace(f"'{escape(value)}'", f"'{anon}'")
                return out
            if self.known.internal_observable(kind, value) == "internal-host":
                self.report.dropped["internal-indicator"] += 1
                return None
        scrubbed, kinds = self.scrub(pattern)
        if kinds - {"address-cryptopan"}:
            self.report.dropped["sensitive-indicator"] += 1
            return None
        out["pattern"] = scrubbed
        return out

    def _free_text(self, obj: dict[str, Any]) -> dict[str, Any]:
        for key in _FREE_TEXT:
            if key in obj:
                if obj["type"] == "note" and key == "content":
                    obj[key] = WITHHELD
                else:
                    del obj[key]
                self.report.dropped["free-text"] += 1
        return obj

    def _coarsen(self, obj: dict[str, Any]) -> dict[str, Any]:
        unit = timedelta(hours=1) if self.policy.coarsen == "hour" else timedelta(days=1)

        def floor(moment: datetime) -> datetime:
            if unit == timedelta(days=1):
                return moment.replace(hour=0, minute=0, second=0, microsecond=0)
            return moment.replace(minute=0, second=0, microsecond=0)

        for key in _TIMESTAMPS:
            if key in obj:
                moment = floor(parse_stamp(obj[key]))
                obj[key] = stamp(moment) if key in {"created", "modified"} else stamp_any(moment)
        if "valid_until" in obj:
            until = parse_stamp(obj["valid_until"])
            floored = floor(until)
            obj["valid_until"] = stamp_any(floored if floored == until else floored + unit)
        return obj

    def bundle(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """A sanitised copy of the bundle (the input is not changed); `report` says what was done."""
        objects: list[dict[str, Any]] = bundle.get("objects", [])
        self.report = SanitiseReport()
        self._clean = set()  # per bundle: what is clean depends on the sensitive values, which may grow between bundles
        if len(self._kept_keys) > 4096:  # property names are few; a document of invented ones must not grow it
            self._kept_keys.clear()
        self.report.objects_in = len(objects)
        kept: dict[str, dict[str, Any]] = {}
        renamed: dict[str, str] = {}
        for obj in objects:
            kind = obj.get("type", "")
            if kind == "marking-definition" or kind == "extension-definition":
                kept[obj["id"]] = obj
                continue
            if kind == "indicator":
                new = self._indicator(obj)
            elif "created" not in obj and kind not in {"relationship", "sighting"} and kind != "bundle":
                new = self._sco(obj)
            else:
                new = self._walk(obj)
            if new is None:
                continue
            if new["id"] != obj["id"]:
                renamed[obj["id"]] = new["id"]
            if self.policy.free_text == "drop":
                new = self._free_text(new if new is not obj else copy.deepcopy(obj))
            if self.policy.coarsen:
                new = self._coarsen(new if new is not obj else copy.deepcopy(obj))
            kept[new["id"]] = new
        dropped = {o["id"] for o in objects if "id" in o} - kept.keys() - renamed.keys()
        self._fix_references(kept, renamed, dropped)
        self.report.objects_out = len(kept)
        return {**{k: v for k, v in bundle.items() if k != "objects"}, "objects": list(kept.values())}

    def _fix_references(self, kept: dict[str, dict[str, Any]], renamed: dict[str, str], dropped: set[str]) -> None:
        """Follow renamed ids, remove references to dropped objects, drop objects left incomplete; to a fixpoint.

        References to objects that were never in the bundle are kept as they are."""

        def resolve(ref: str) -> str | None:
            return None if ref in dropped else renamed.get(ref, ref)

        # the properties that may hold references, by an object's property names (objects of a type share them)
        reference_keys: dict[tuple[str, ...], tuple[str, ...]] = {}
        changed = bool(dropped or renamed)
        while changed:
            changed = False
            affected = dropped | renamed.keys()
            for ident in list(kept):
                obj = kept[ident]
                names = tuple(obj)
                keys = reference_keys.get(names)
                if keys is None:
                    keys = reference_keys[names] = tuple(k for k in names if k[-4:] == "_ref" or k[-5:] == "_refs"
                                                         or k == "extensions")
                if not _touches(obj, keys, affected):
                    continue
                fixed = _rewrite_refs(obj, resolve)
                missing = [k for k in _REQUIRED_REFS.get(obj["type"], ()) if k not in fixed]
                required_list = _REQUIRED_LISTS.get(obj["type"])
                if missing or (required_list and not fixed.get(required_list)):
                    del kept[ident]
                    dropped.add(ident)
                    self.report.dropped[f"{obj['type']}-orphaned"] += 1
                    changed = True
                elif fixed is not obj:
                    kept[ident] = fixed


def _touches(obj: dict[str, Any], keys: tuple[str, ...], affected: set[str]) -> bool:
    """Whether the object's reference properties `keys` (`_refs` of them) name an id in `affected`."""
    for key in keys:
        item = obj[key]
        if key[-4:] == "_ref":
            if item in affected:
                return True
        elif key[-5:] == "_refs":
            if isinstance(item, list) and not affected.isdisjoint(item):
                return True
        elif not affected.isdisjoint(_refs({key: item})):
            return True
    return False


def _refs(value: dict[str, Any]) -> Any:
    """Every id an object refers to: its *_ref and *_refs properties, and those inside its extensions."""
    for key, item in value.items():
        if key[-4:] == "_ref":
            yield item
        elif key[-5:] == "_refs" and isinstance(item, list):
            yield from item
        elif key == "extensions" and isinstance(item, dict):
            for extension in item.values():
                if isinstance(extension, dict):
                    yield from _refs(extension)


def scoped(rx: str) -> str:
    """`(?i)` applies to the whole expression; inside an alternation it must be the scoped `(?i:…)`."""
    return f"(?i:{rx[4:]})" if rx.startswith("(?i)") else rx


def _rewrite_refs(value: Any, resolve: Callable[[str], str | None]) -> Any:
    """The value with its references resolved; the value itself (not a copy) when none changed."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            if key.endswith("_ref") and isinstance(item, str) and key != "created_by_ref":
                target = resolve(item)
                if target is not None:
                    out[key] = target
                changed = changed or target != item
            elif key.endswith("_refs") and isinstance(item, list) and key != "object_marking_refs":
                refs = [t for t in (resolve(r) for r in item if isinstance(r, str)) if t is not None]
                if refs or key in {"object_refs"}:
                    out[key] = refs
                    changed = changed or refs != item
                else:
                    changed = True
            else:
                new = _rewrite_refs(item, resolve) if isinstance(item, dict | list) else item
                out[key] = new
                changed = changed or new is not item
        return out if changed else value
    if isinstance(value, list):
        items = [_rewrite_refs(v, resolve) if isinstance(v, dict | list) else v for v in value]
        return items if any(new is not old for new, old in zip(items, value, strict=True)) else value
    return value
