"""Normalising vendor and product names, and reading CPE 2.3 names, so advisories meet assets.

Advisories and inventories spell the same maker many ways ("Becton, Dickinson and Company (BD)",
"BD", "Phillips", "GE Healthcare", "Dräger"). Names are reduced to a key: Unicode folded, lower
case, trademark signs and punctuation dropped, corporate suffixes removed, then mapped through an
alias table to one canonical vendor. Product keys are exact after normalisation: a fuzzy product
match is how "Alaris 8015 PC unit" would wrongly flag an "Alaris Syringe Module", so there is none.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# canonical vendor key -> other spellings, from the data file beside this module (vendor_aliases.toml)
ALIASES_FILE = Path(__file__).with_name("vendor_aliases.toml")


def _read_aliases(path: Path) -> dict[str, tuple[str, ...]]:
    with path.open("rb") as handle:
        table = tomllib.load(handle).get("vendors", {})
    return {_basic(canonical): tuple(dict.fromkeys(_basic(a) for a in spellings if _basic(a)))
            for canonical, spellings in table.items()}


# Removed from the end of a vendor name, repeatedly: "Natus Medical, Inc." -> "natus".
_SUFFIXES = frozenset({
    "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "llc", "lp", "gmbh", "ag",
    "sa", "nv", "bv", "plc", "oy", "oyj", "kk", "kg", "se", "spa", "srl", "pty", "ab", "as", "asa", "aps",
    "medical", "healthcare", "health", "group", "holdings", "international", "technologies", "technology",
    "systems", "solutions", "developments", "mbh", "kgaa",
})
_TRADEMARKS = re.compile(r"[®™©℠]|\((r|tm|c)\)", re.IGNORECASE)



def _fold(text: str) -> str:
    # "Dräger" -> "drager"; "YhtymÃ¤" (UTF-8 read as Latin-1 in one advisory) -> "yhtyma"
    if "Ã" in text or "Â" in text:
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            text = text.encode("latin-1").decode("utf-8")
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def _basic(text: str) -> str:
    # trademark signs go before folding, which would turn "™" into "TM"
    text = _fold(_TRADEMARKS.sub(" ", text or ""))
    # dotted abbreviations are one word: "N.V." -> "nv", "S.A." -> "sa"
    text = re.sub(r"\b(?:[A-Za-z]\.){2,}", lambda m: m.group(0).replace(".", ""), text).lower().replace("&", " ")
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return " ".join(text.split())


def _strip_suffixes(key: str) -> str:
    words = key.split()
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    return " ".join(words)


VENDOR_ALIASES: dict[str, tuple[str, ...]] = _read_aliases(ALIASES_FILE)
_ALIAS_TO_CANONICAL = {form: canonical for canonical, aliases in VENDOR_ALIASES.items() for alias in aliases
                       for form in (alias, _strip_suffixes(alias))}
_ALIAS_TO_CANONICAL.update({canonical: canonical for canonical in VENDOR_ALIASES})


@lru_cache(maxsize=16384)
def vendor_key(name: str) -> str:
    """One canonical key for a vendor name ("" when the name is empty)."""
    key = _basic(name)
    if not key:
        return ""
    for candidate in (key, _strip_suffixes(key)):
        if candidate in _ALIAS_TO_CANONICAL:
            return _ALIAS_TO_CANONICAL[candidate]
    return _strip_suffixes(key)


@lru_cache(maxsize=16384)
def vendor_keys(name: str) -> tuple[str, ...]:
    """Every vendor an advisory's vendor field names.

    CISA writes joint and parenthesised vendors: "Silex Technology and GE Healthcare",
    "Hillrom and ELI, Baxter International Inc.", "Becton, Dickinson and Company (BD)". A name
    the alias table knows whole is one vendor; otherwise each part is one.
    """
    whole = vendor_key(re.sub(r"\([^)]*\)", " ", name or ""))
    inner = [vendor_key(m) for m in re.findall(r"\(([^)]*)\)", name or "")]
    if whole in VENDOR_ALIASES or any(k in VENDOR_ALIASES for k in inner):
        keys = [whole, *inner]
    else:
        parts = re.split(r",|\band\b|/|;", re.sub(r"\([^)]*\)", " ", name or ""), flags=re.IGNORECASE)
        keys = [whole, *inner, *(vendor_key(p) for p in parts)]
    out: list[str] = []
    for key in keys:
        if key and key not in _SUFFIXES and key not in out:
            out.append(key)
    return tuple(out)


@lru_cache(maxsize=65536)
def product_keys(product: str, vendor: str = "") -> tuple[str, ...]:
    """The keys a product name is known by: as written, without parentheses, without the vendor prefix.

    "BD Pyxis MedStation ES" under BD is also "pyxis medstation es"; "Welch Allyn Connex Spot
    Monitor (CSM)" is also "connex spot monitor". Keys stay exact: no token may go missing
    other than a leading vendor name or a parenthesised aside.
    """
    forms = [product, re.sub(r"\([^)]*\)", " ", product or "")]
    keys: list[str] = []
    prefixes = _vendor_prefixes(vendor)
    for form in forms:
        key = _basic(form)
        if not key:
            continue
        candidates = [key]
        for prefix in prefixes:
            if key.startswith(prefix + " ") and len(key) > len(prefix) + 1:
                candidates.append(key[len(prefix) + 1:])
        for candidate in candidates:
            if candidate not in keys:
                keys.append(candidate)
    return tuple(keys)


# Words that say what kind of thing a product is, not which one: "Valleylab FT10 Energy Platform
# (VLFT10GEN) software" is the "Valleylab FT10 Energy Platform" on the purchase order.
GENERIC_WORDS = frozenset({"software", "firmware", "application", "applications", "app", "sw", "fw"})


@dataclass(frozen=True, slots=True)
class NameForm:
    """One way a product name reads: `key` (no spaces: "FT-10" = "FT10" = "ft 10") and how it was got."""

    key: str
    text: str  # the normalised words ("valleylab ft10 energy platform")
    how: str  # "as written", "without (VLFT10GEN), without 'software'", ...


@lru_cache(maxsize=65536)
def compact(text: str) -> str:
    """A normalised name without spaces: the form names are compared in."""
    return _basic(text).replace(" ", "")


@lru_cache(maxsize=65536)
def name_forms(product: str, vendor: str = "") -> tuple[NameForm, ...]:
    """Every form a product name is matched in, first the closest to what was written.

    From the name as written and without its parenthesised asides (model codes such as
    "(VLFT10GEN)", "(including EC)"): with and without a leading vendor name, then with and without
    the generic words (software, firmware, application). Forms never drop any other word.
    """
    forms: dict[str, NameForm] = {}
    starts = [(product or "", "as written")]
    asides = re.findall(r"\(([^()]*)\)", product or "")
    if asides:
        starts.append((re.sub(r"\([^)]*\)", " ", product), "without " + ", ".join(f"({a.strip()})" for a in asides)))
    prefixes = _vendor_prefixes(vendor)
    for text, how in starts:
        key = _basic(text)
        if not key:
            continue
        variants = [(key, how)]
        for prefix in prefixes:
            if key.startswith(prefix + " ") and len(key) > len(prefix) + 1:
                variants.append((key[len(prefix) + 1:], f"{how}, without the vendor's name {prefix!r}"))
                break
        for words_text, words_how in variants:
            words = words_text.split()
            kept = [w for w in words if w not in GENERIC_WORDS]
            options = [(words_text, words_how)]
            if kept and len(kept) < len(words):
                dropped = ", ".join(repr(w) for w in words if w in GENERIC_WORDS)
                options.append((" ".join(kept), f"{words_how}, without {dropped}"))
            for option, option_how in options:
                forms.setdefault(option.replace(" ", ""), NameForm(option.replace(" ", ""), option, option_how))
    return tuple(forms.values())


@lru_cache(maxsize=65536)
def model_codes(product: str) -> tuple[str, ...]:
    """Model codes a product name gives in parentheses, usable as aliases: one word with a digit and
    at least four characters ("VLFT10GEN", "718095"), not an acronym ("CSM") or an aside ("including EC")."""
    codes = []
    for aside in re.findall(r"\(([^()]*)\)", product or ""):
        key = _basic(aside)
        if key and " " not in key and len(key) >= 4 and any(c.isdigit() for c in key):
            codes.append(aside.strip())
    return tuple(codes)


def core_words(product: str, vendor: str = "") -> frozenset[str]:
    """The words of a product's shortest form (no asides, vendor name or generic words)."""
    forms = name_forms(product, vendor)
    return frozenset(forms[-1].text.split()) if forms else frozenset()


def _vendor_prefixes(vendor: str) -> list[str]:
    """Spellings of the vendor (and of every vendor in the alias group) that may lead a product name."""
    prefixes: set[str] = set()
    for key in vendor_keys(vendor) if vendor else ():
        prefixes.add(key)
        prefixes.update(VENDOR_ALIASES.get(key, ()))
    prefixes.update(_basic(part) for part in re.split(r",|\band\b|\(|\)", vendor or "") if _basic(part))
    # the alias group of a prefix found in the name itself ("Welch Allyn ..." under Baxter)
    return sorted((p for p in prefixes if p), key=len, reverse=True)


@dataclass(frozen=True, slots=True)
class Cpe:
    part: str
    vendor: str
    product: str
    version: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.vendor, self.product)

    @property
    def has_version(self) -> bool:
        return self.version not in ("*", "-", "")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value).lower()


@lru_cache(maxsize=16384)
def parse_cpe(text: str) -> Cpe | None:
    """Read a CPE 2.3 formatted string (or a CPE 2.2 URI); None when it is not one."""
    text = (text or "").strip()
    if text.startswith("cpe:2.3:"):
        # split on ':' not preceded by a backslash (escaped colons stay in the value)
        fields = re.split(r"(?<!\\):", text)
        if len(fields) < 6:
            return None
        part, vendor, product, version = (_unescape(f) for f in fields[2:6])
    elif text.startswith("cpe:/"):
        fields = text[5:].split(":")
        fields += [""] * (4 - len(fields))
        part, vendor, product, version = (_unescape(f) for f in fields[:4])
    else:
        return None
    if part not in ("a", "h", "o", "*") or not vendor or not product or vendor in ("*", "-"):
        return None
    return Cpe(part, vendor, product, version or "*")


def cpe_name_keys(cpe: Cpe) -> tuple[str, tuple[str, ...]]:
    """The vendor key and product keys a CPE's names read as ("welch_allyn", "connex_spot_monitor")."""
    vendor = cpe.vendor.replace("_", " ")
    return vendor_key(vendor), product_keys(cpe.product.replace("_", " "), vendor)
