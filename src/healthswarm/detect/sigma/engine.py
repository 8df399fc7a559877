"""The matcher: compiled rules linked into an index that tests each event only against rules that can match it.

Per event:

1. **Route**: the event's route key (Windows channel + event id, or the ingest format) selects the
   rules whose log source covers it (`logsource.py`). Per key, a *group* is built once and memoised.
2. **Field index**: in a group, every case-insensitive `eq` atom sits in a dict per field and every
   `contains` / `startswith` / `endswith` atom in one Aho-Corasick automaton per field
   (`pyahocorasick`). One pass over each lower-cased field value yields the set of true atoms (hits).
3. **Triggers**: each rule has a *trigger*, a set of indexed atoms at least one of which must hold
   for the rule to match (for `and`, the most selective child's; for `or`, the union of its
   children's; a glob or case-sensitive value is guarded by its longest literal, a regular expression
   by the literal every match holds, `regexes.required_literal`). Only rules with a trigger hit — and
   the few without a trigger (e.g. only `not`, literal-less regexes, keywords) — are evaluated.
4. **Evaluation**: the rule's condition runs as closures; indexed atoms are a set lookup, the others
   (regex, glob, cidr, numeric, fieldref, exists, null, keywords, cased) are computed once per event
   and memoised, because rules share atoms.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import ahocorasick

from healthswarm.detect.sigma.atoms import (
    INDEXED_OPS,
    MULTI,
    VALUE_OPS,
    Atom,
    Predicate,
    longest_literal,
    predicate,
    text,
)
from healthswarm.detect.sigma.logsource import WINDOWS_ALIASES, WINDOWS_FORMATS, windows_key
from healthswarm.detect.sigma.regexes import required_literal
from healthswarm.detect.sigma.ruleset import CompiledRule, RuleSet
from healthswarm.model import Event

_CONTAINS, _STARTS, _ENDS = 0, 1, 2
_KIND = {"contains": _CONTAINS, "startswith": _STARTS, "endswith": _ENDS}
#: Field values up to this length have their hits remembered, at most this many (then the memo starts again):
#: bounded memory (a few tens of MB at most).
SEEN_MAX_LENGTH = 256
SEEN_MAX_ENTRIES = 200_000
#: The pseudo-field under which keyword atoms are indexed: its automaton runs over every value.
KEYWORDS = "\x00keywords"
#: A regex's required literal guards it from this length on: a shorter one (`"`, `-f`) holds in most values.
REGEX_GUARD_MIN = 3

Evaluator = Callable[[set[int], "_Memo"], bool]
_UNSET = object()
#: A field's index entry (None: only the keywords look at it) and the memo of its values' hits (None: not looked at).
_Slot = tuple[Any, dict[Any, tuple[int, ...]] | None]
_SKIP: _Slot = (None, None)


def flatten(obj: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """A nested JSON object as flat dotted keys (lists kept as values)."""
    out = {} if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            name = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                flatten(v, name, out)
            else:
                out[name] = v
    return out


#: (Channel, EventID) as written → the route key and the audit-event aliases of that kind of event (bounded:
#: the input names them).
_ROUTES: dict[tuple[str, int], tuple[tuple[Any, ...], dict[str, str] | None]] = {}
ROUTES_MAX = 4096


def _windows_route(original: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, str] | None]:
    key = windows_key(original)
    return ("win", *key), WINDOWS_ALIASES.get(key)  # type: ignore[call-overload]


def event_view(event: Event) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """The dict rules read field values from, and the event's route key.

    Windows events: the flat original record (Sigma's Windows field names), with audit-event aliases.
    Others: the ECS fields over the flattened original (vendor names where ECS has none), `@timestamp`
    (for the `|hour`-style modifiers); a text original is kept under `_raw` so keywords can search it."""
    original = event.original
    observer = event.fields.get("observer.type")
    if isinstance(original, dict) and (observer in WINDOWS_FORMATS or ("EventID" in original and
                                                                        "Channel" in original)):
        channel, eid = original.get("Channel"), original.get("EventID")
        if type(channel) is str and type(eid) is int:  # as parsers write them: the route of that kind, remembered
            route = _ROUTES.get((channel, eid))
            if route is None:
                if len(_ROUTES) >= ROUTES_MAX:
                    _ROUTES.clear()
                route = _ROUTES[(channel, eid)] = _windows_route(original)
        else:
            route = _windows_route(original)
        key, aliases = route
        # names with a space are rare: one C-level join says whether to look for them
        spaced = [k for k in original if " " in k] if " " in "".join(original) else []
        if aliases or spaced:
            original = dict(original)
            for alias, source in (aliases or {}).items():
                if alias not in original and source in original:
                    original[alias] = original[source]
            for name in spaced:  # Defender writes "Source Name"; Sigma rules say "SourceName"
                original.setdefault(name.replace(" ", ""), original[name])
        return original, key
    view = flatten(original) if isinstance(original, dict) else {}
    if isinstance(original, str):
        view["_raw"] = original
    view.update(event.fields)
    view["@timestamp"] = event.timestamp
    return view, ("obs", observer)


@lru_cache(maxsize=256)
def _any_of(words: tuple[str, ...]) -> Callable[[str], Any] | None:
    """A fast `search` for "does any of these literals occur" (RE2), or None when RE2 is unavailable."""
    try:
        import re2
    except ImportError:  # pragma: no cover - google-re2 is a dependency
        return None
    options = re2.Options()
    options.max_mem = 64 << 20
    try:
        return re2.compile("|".join(re.escape(w) for w in words), options).search
    except Exception:  # re2 raises its own error type; fall back to the automaton alone
        return None


class _Memo:
    """Per-event memo of computed (non-indexed) atoms."""

    __slots__ = ("engine", "hits", "results", "view")

    def __init__(self, engine: SigmaEngine, view: dict[str, Any], hits: set[int]) -> None:
        self.engine = engine
        self.view = view
        self.hits = hits
        self.results: dict[int, bool] = {}

    def atom(self, aid: int) -> bool:
        result = self.results.get(aid)
        if result is None:
            guard = self.engine.guards.get(aid)
            result = False if guard is not None and guard not in self.hits else self.engine.predicate(aid)(self.view)
            self.results[aid] = result
        return result


@dataclass
class _Group:
    """The index for one route key: per-field eq dicts and automata, triggers, untriggered rules."""

    index: dict[str, tuple[Any, Any, Any]] = field(default_factory=dict)  # field → (eq dict, automata)
    keywords: tuple[Any, Any, Any] | None = None
    keyword_words: tuple[str, ...] = ()  # the keyword literals, for the RE2 prefilter
    trigger: dict[int, list[int]] = field(default_factory=dict)
    always: list[int] = field(default_factory=list)
    size: int = 0


@dataclass
class Tables:
    """The linked form of a rule set: interned atoms, conditions over atom ids, triggers and route maps.
    Plain data, so it is cached with the rule set and a warm start does no linking at all."""

    atoms: list[Atom] = field(default_factory=list)
    index_entries: list[tuple[str, str, str] | None] = field(default_factory=list)  # (field, op, lower text)
    guards: dict[int, int] = field(default_factory=dict)  # atom → a necessary indexed atom (its longest literal)
    conditions: list[tuple[Any, ...]] = field(default_factory=list)
    rule_atoms: list[tuple[int, ...]] = field(default_factory=list)
    triggers: list[frozenset[int] | None] = field(default_factory=list)
    routes_win: dict[tuple[str | None, int | None], list[int]] = field(default_factory=dict)
    routes_obs: dict[str, list[int]] = field(default_factory=dict)
    routes_nonwin: list[int] = field(default_factory=list)


class _Linker:
    def __init__(self) -> None:
        self.t = Tables()
        self._ids: dict[Atom, int] = {}

    def link(self, rules: list[CompiledRule]) -> Tables:
        t = self.t
        for index, rule in enumerate(rules):
            used: list[int] = []
            node = self._intern(rule.condition, used)
            t.conditions.append(node)
            t.rule_atoms.append(tuple(sorted(set(used) | {t.guards[a] for a in used if a in t.guards})))
            t.triggers.append(self._trigger(node))
            for route in rule.routes:
                if route[0] == "win":
                    t.routes_win.setdefault((route[1], route[2]), []).append(index)
                elif route[0] == "obs":
                    t.routes_obs.setdefault(route[1], []).append(index)
                else:
                    t.routes_nonwin.append(index)
        return t

    def _atom_id(self, atom: Atom) -> int:
        t = self.t
        aid = self._ids.get(atom)
        if aid is not None:
            return aid
        aid = self._ids[atom] = len(t.atoms)
        t.atoms.append(atom)
        t.index_entries.append(None)
        op, fld, arg, cased = atom
        literal = ""
        if op in INDEXED_OPS and not cased and fld is not None and (op == "eq" or arg != ""):
            t.index_entries[aid] = (fld, op, arg)
        elif op == "keyword":
            inner = [p for p in arg if p != MULTI] if arg and arg[0] == MULTI and arg[-1] == MULTI else None
            if not cased and inner is not None and len(inner) == 1 and isinstance(inner[0], str) and inner[0]:
                t.index_entries[aid] = (KEYWORDS, "contains", inner[0].lower())
            else:
                literal = longest_literal(arg)
                if literal:
                    t.guards[aid] = self._atom_id(("keyword", None, (MULTI, literal.lower(), MULTI), False))
                return aid
        elif fld is not None:
            if op == "glob":
                literal = longest_literal(arg)
            elif op in INDEXED_OPS and cased:
                literal = arg
            elif op == "re":  # most regexes hold a literal: without one they ran on every event of their source
                literal = required_literal(*arg)
                literal = literal if len(literal) >= REGEX_GUARD_MIN else ""
        if literal:
            t.guards[aid] = self._atom_id(("contains", fld, literal.lower(), False))
        return aid

    def _intern(self, node: tuple[Any, ...], used: list[int]) -> tuple[Any, ...]:
        kind = node[0]
        if kind == "atom":
            aid = self._atom_id(node[1])
            used.append(aid)
            return ("a", aid)
        if kind in ("and", "or"):
            return (kind, tuple(self._intern(c, used) for c in node[1]))
        if kind == "not":
            return ("not", self._intern(node[1], used))
        return node

    def _cost(self, trigger: frozenset[int]) -> float:
        """Estimated chance that some atom of a trigger holds: short and `eq` patterns hit often."""
        total = 0.0
        for aid in trigger:
            entry = self.t.index_entries[aid]
            op, length = (entry[1], len(entry[2])) if entry else ("", 1)
            total += (4.0 if op == "eq" and length < 6 else 1.0) / (1 + length)
        return total

    def _trigger(self, node: tuple[Any, ...]) -> frozenset[int] | None:
        kind = node[0]
        if kind == "a":
            aid = node[1]
            if self.t.index_entries[aid] is not None:
                return frozenset((aid,))
            guard = self.t.guards.get(aid)
            return frozenset((guard,)) if guard is not None else None
        if kind == "or":
            union: set[int] = set()
            for child in node[1]:
                sub = self._trigger(child)
                if sub is None:
                    return None
                union |= sub
            return frozenset(union)
        if kind == "and":
            options = [sub for sub in (self._trigger(c) for c in node[1]) if sub is not None]
            return min(options, key=self._cost) if options else None
        return None


def link(ruleset: RuleSet) -> Tables:
    """The rule set's linked tables, computed once and kept on the rule set (and so in its cache)."""
    if ruleset.tables is None:
        ruleset.tables = _Linker().link(ruleset.rules)
    return ruleset.tables


class SigmaEngine:
    """Compiled rules linked for matching. `match(event)` returns the indices of the rules that match."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.rules: list[CompiledRule] = ruleset.rules
        t = self.tables = link(ruleset)
        self.atoms = t.atoms
        self.guards = t.guards
        self.indexed = [e is not None for e in t.index_entries]
        self.triggers = t.triggers
        self.evaluators: list[Evaluator | None] = [None] * len(self.rules)
        # rule → the indexed atoms that must all hold for it to match (guards included): one subset test turns
        # away a quarter of the candidates before their condition runs; built with the evaluator
        self.required: list[frozenset[int]] = [frozenset()] * len(self.rules)
        self._verdicts: dict[int, dict[Any, bool]] = {}  # computed atom → field value → its verdict
        self._predicates: dict[int, Predicate] = {}
        self._groups: dict[tuple[Any, ...], _Group] = {}
        self._by_rules: dict[tuple[int, ...], _Group] = {}
        # id(group) → field name → (its index entry, the memo of what its values hit); see `_slot`
        self._slots: dict[int, dict[str, _Slot]] = {}
        self._remembered = 0  # values in all memos, bounded by SEEN_MAX_ENTRIES
        self._prefilters: dict[int, Any] = {}  # id(group) → its keywords' RE2 search (None: no RE2)
        self.groups_built = 0

    def predicate(self, aid: int) -> Predicate:
        pred = self._predicates.get(aid)
        if pred is None:
            pred = self._predicates[aid] = predicate(self.atoms[aid])
        return pred

    def _value_leaf(self, aid: int, fld: str) -> Evaluator:
        """A computed atom decided by one field's value (VALUE_OPS). The regular expressions, globs and cased tests
        of rules that run on every event of their source (no literal to index) see the same images and command
        lines again and again, so each value's verdict is remembered (bounded like the index memo); the guard is
        tested first, and the closure goes straight to the verdicts (no per-event memo between)."""
        guard = self.guards.get(aid)
        verdicts = self._verdicts.setdefault(aid, {})
        pred = self.predicate(aid)

        def leaf(hits: set[int], memo: _Memo) -> bool:
            if guard is not None and guard not in hits:
                return False
            view = memo.view
            value = view.get(fld)
            kind = type(value)
            if kind is int or (kind is str and len(value) <= SEEN_MAX_LENGTH):
                result = verdicts.get(value)
                if result is None:
                    if self._remembered >= SEEN_MAX_ENTRIES:
                        self._forget()
                    result = verdicts[value] = pred(view)
                    self._remembered += 1
                return result
            return pred(view)

        return leaf

    def evaluator(self, index: int) -> Evaluator:
        ev = self.evaluators[index]
        if ev is None:
            condition = self.tables.conditions[index]
            self.required[index] = self._required(condition)
            ev = self.evaluators[index] = self._build(condition)
        return ev

    def _required(self, node: tuple[Any, ...]) -> frozenset[int]:
        """Indexed atoms that hold whenever `node` does: an indexed atom itself or a computed atom's guard, all
        of an `and`'s children's, what every child of an `or` shares; nothing from under a `not`."""
        kind = node[0]
        if kind == "a":
            aid = node[1]
            if self.indexed[aid]:
                return frozenset((aid,))
            guard = self.guards.get(aid)
            return frozenset(() if guard is None else (guard,))
        if kind == "and":
            return frozenset().union(*(self._required(c) for c in node[1]))
        if kind == "or" and node[1]:
            return frozenset.intersection(*(self._required(c) for c in node[1]))
        return frozenset()

    def _build(self, node: tuple[Any, ...]) -> Evaluator:
        kind = node[0]
        if kind == "a":
            aid = node[1]
            if self.indexed[aid]:
                return lambda hits, memo: aid in hits
            op, fld = self.atoms[aid][:2]
            if op in VALUE_OPS and fld is not None:
                return self._value_leaf(aid, fld)
            return lambda hits, memo: memo.atom(aid)
        if kind == "not":
            inner = self._build(node[1])
            return lambda hits, memo: not inner(hits, memo)
        if kind == "const":
            value = bool(node[1])
            return lambda hits, memo: value
        indexed = self.indexed
        ids = frozenset(c[1] for c in node[1] if c[0] == "a" and indexed[c[1]])
        rest = [c for c in node[1] if not (c[0] == "a" and indexed[c[1]])]
        if ids and not rest:  # the common case, a value list: one set operation
            if kind == "and":
                return lambda hits, memo: ids <= hits
            return lambda hits, memo: not ids.isdisjoint(hits)
        children = tuple(self._build(c) for c in rest)
        # the indexed children first, as one set operation, then the others in order, stopping at the first that
        # decides (loops: faster than all()/any() over a generator)
        if kind == "and":
            def all_of(hits: set[int], memo: _Memo) -> bool:
                if not ids <= hits:
                    return False
                for child in children:  # noqa: SIM110
                    if not child(hits, memo):
                        return False
                return True
            return all_of

        def any_of(hits: set[int], memo: _Memo) -> bool:
            if not ids.isdisjoint(hits):
                return True
            for child in children:  # noqa: SIM110
                if child(hits, memo):
                    return True
            return False
        return any_of

    # --- groups -----------------------------------------------------------------------------

    def _rules_for(self, key: tuple[Any, ...]) -> list[int]:
        if key[0] == "win":
            channel, eid = key[1], key[2]
            routes = self.tables.routes_win
            found = routes.get((channel, eid), []) + routes.get((channel, None), []) + routes.get((None, None), [])
            return sorted(set(found))
        found = list(self.tables.routes_nonwin)
        if key[1] is not None:
            found += self.tables.routes_obs.get(key[1], [])
        return sorted(set(found))

    def _group(self, key: tuple[Any, ...]) -> _Group:
        group = self._groups.get(key)
        if group is not None:
            return group
        rules = self._rules_for(key)
        signature = tuple(rules)
        group = self._by_rules.get(signature)
        if group is None:
            group = self._by_rules[signature] = self._build_group(rules)
            self.groups_built += 1
        self._groups[key] = group
        return group

    def groups(self) -> dict[tuple[int, ...], _Group]:
        """The field indexes built so far, by the rules they cover (picklable: see `cache.save_groups`)."""
        return dict(self._by_rules)

    def adopt_groups(self, groups: dict[tuple[int, ...], _Group]) -> None:
        """Reuse field indexes built by an earlier run over the same rule set."""
        for signature, group in groups.items():
            self._by_rules.setdefault(signature, group)

    def _build_group(self, rules: list[int]) -> _Group:
        group = _Group()
        group.size = len(rules)
        eqs: dict[str, dict[str, list[int]]] = {}
        patterns: dict[str, dict[str, list[tuple[int, int, int]]]] = {}
        for index in rules:
            for aid in self.tables.rule_atoms[index]:
                entry = self.tables.index_entries[aid]
                if entry is None:
                    continue
                fld, op, arg = entry
                if op == "eq":
                    ids = eqs.setdefault(fld, {}).setdefault(arg, [])
                    if aid not in ids:
                        ids.append(aid)
                else:
                    entries = patterns.setdefault(fld, {}).setdefault(arg, [])
                    entry = (aid, _KIND[op], len(arg))
                    if entry not in entries:
                        entries.append(entry)
            trigger = self.triggers[index]
            if trigger is None:
                group.always.append(index)
            else:
                for aid in trigger:
                    group.trigger.setdefault(aid, []).append(index)
        for fld in sorted(set(eqs) | set(patterns)):
            contains = anchored = None
            words = patterns.get(fld, {})
            plain = {w: tuple(a for a, k, _ in e if k == _CONTAINS) for w, e in words.items()}
            plain = {w: ids for w, ids in plain.items() if ids}
            ends = {w: tuple((a, k == _STARTS, n) for a, k, n in e if k != _CONTAINS) for w, e in words.items()}
            ends = {w: e for w, e in ends.items() if e}
            if plain:
                contains = ahocorasick.Automaton()
                for word, ids in plain.items():
                    contains.add_word(word, ids)
                contains.make_automaton()
            if ends:
                anchored = ahocorasick.Automaton()
                for word, entries in ends.items():
                    anchored.add_word(word, entries)
                anchored.make_automaton()
            entry = (eqs.get(fld), contains, anchored)
            if fld == KEYWORDS:
                group.keywords = entry
                group.keyword_words = tuple(sorted(words))
            else:
                group.index[fld] = entry
        return group

    # --- matching ---------------------------------------------------------------------------

    def _slot(self, group: _Group, slots: dict[str, _Slot], fld: str) -> _Slot:
        """What a field's values are looked up in: its index entry (None when no atom of the group names it) and
        the memo of what each value hit, both indexes at once (the keywords' memo, shared, for a field no atom
        names); _SKIP when neither index could hold."""
        entry = group.index.get(fld)
        if entry is not None:
            return (entry, {})
        if group.keywords is None:
            return _SKIP
        shared = slots.get(KEYWORDS)
        if shared is None:
            shared = slots[KEYWORDS] = (None, {})
        return shared

    def _hits(self, group: _Group, view: dict[str, Any]) -> set[int]:
        """The indexed atoms that hold for `view`: each value through its field's index and, when the group has
        keyword atoms, through the keyword automaton too (a keyword holds when some value contains it)."""
        hits: set[int] = set()
        slots = self._slots.get(id(group))
        if slots is None:
            slots = self._slots[id(group)] = {}
        misses: list[tuple[_Slot, Any]] = []
        unremembered: list[Any] = []  # values kept out of the memo (long, lists, floats), for the keywords
        for fld, value in view.items():
            if value is None:
                continue
            slot = slots.get(fld)
            if slot is None:
                slot = slots[fld] = self._slot(group, slots, fld)
            memo = slot[1]
            if memo is None:
                continue
            kind = type(value)
            if kind is int or (kind is str and len(value) <= SEEN_MAX_LENGTH):
                # the same values recur (images, users, hosts, providers, ids): what each one hit is remembered
                # per field (a dict per field, so no key tuple is built per value)
                found = memo.get(value)
                if found is None:
                    misses.append((slot, value))
                elif found:
                    hits.update(found)
            else:
                items = value if isinstance(value, list | tuple) else (value,)
                if slot[0] is not None:
                    self._scan(slot[0], items, hits)
                if group.keywords is not None:
                    unremembered.extend(items)
        if misses or unremembered:
            self._first_seen(group, misses, unremembered, hits)
        return hits

    def _first_seen(self, group: _Group, misses: list[tuple[_Slot, Any]], unremembered: list[Any],
                    hits: set[int]) -> None:
        """Scan the values the memo does not know, and remember them. Keywords rarely occur and no pattern spans
        two values (nor NUL), so RE2 (several times faster than the automaton on long text) first says over all
        these values joined by NUL whether any keyword occurs; only then is each value scanned for them."""
        keywords = group.keywords  # kept only when some keyword occurs in these values
        if keywords is not None:
            prefilter = self._prefilters.get(id(group), _UNSET)
            if prefilter is _UNSET:
                prefilter = self._prefilters[id(group)] = _any_of(group.keyword_words)
            texts = [t for t in map(text, [value for _, value in misses] + unremembered) if t is not None]
            if prefilter is not None and prefilter("\x00".join(texts).lower()) is None:
                keywords = None
        for (entry, memo), value in misses:
            one: set[int] = set()
            if entry is not None:
                self._scan(entry, (value,), one)
            if keywords is not None:
                self._scan(keywords, (value,), one)
            found = tuple(one)
            if self._remembered >= SEEN_MAX_ENTRIES:
                self._forget()
            memo[value] = found
            self._remembered += 1
            hits.update(found)
        if keywords is not None and unremembered:
            self._scan(keywords, unremembered, hits)

    def _forget(self) -> None:
        """Empty every memo (in place: the slots holding them stay valid)."""
        for slots in self._slots.values():
            for _, memo in slots.values():
                if memo is not None:
                    memo.clear()
        for verdicts in self._verdicts.values():  # in place: the closures of `_value_leaf` hold them
            verdicts.clear()
        self._remembered = 0

    @staticmethod
    def _scan(entry: tuple[Any, Any, Any], items: Iterable[Any], hits: set[int]) -> None:
        eqmap, contains, anchored = entry
        for item in items:
            if type(item) is not str:
                item = text(item)
                if item is None:
                    continue
            s = item.lower()
            if eqmap is not None:
                ids = eqmap.get(s)
                if ids:
                    hits.update(ids)
            if not s:
                continue
            if contains is not None:
                for _, ids in contains.iter(s):
                    hits.update(ids)
            if anchored is not None:
                last = len(s) - 1
                for end, entries in anchored.iter(s):
                    for aid, starts, length in entries:
                        if (end == length - 1) if starts else (end == last):
                            hits.add(aid)

    def match_view(self, view: dict[str, Any], key: tuple[Any, ...]) -> list[int]:
        group = self._group(key)
        if not group.size:
            return []
        hits = self._hits(group, view)
        trigger = group.trigger
        candidates = set(group.always)
        for aid in hits:
            rules = trigger.get(aid)
            if rules:
                candidates.update(rules)
        if not candidates:
            return []
        memo = _Memo(self, view, hits)
        evaluators = self.evaluators
        required = self.required
        out = []
        for i in sorted(candidates):
            ev = evaluators[i] or self.evaluator(i)
            if required[i] <= hits and ev(hits, memo):
                out.append(i)
        return out

    def match(self, event: Event) -> list[int]:
        """Indices (into `rules`) of the rules that match `event`."""
        view, key = event_view(event)
        return self.match_view(view, key)

    def matching_rules(self, event: Event) -> list[CompiledRule]:
        return [self.rules[i] for i in self.match(event)]

    def stats(self) -> dict[str, Any]:
        return {"rules": len(self.rules), "atoms": len(self.atoms), "indexed_atoms": sum(self.indexed),
                "untriggered_rules": sum(1 for t in self.triggers if t is None), "route_keys": len(self._groups),
                "field_indexes": len(self._by_rules)}


def rule_indices(engine: SigmaEngine, keys: Iterable[str]) -> set[int]:
    wanted = set(keys)
    return {i for i, r in enumerate(engine.rules) if r.meta.key in wanted or r.meta.id in wanted}
