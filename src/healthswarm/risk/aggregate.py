"""The aggregate probability of several attack paths: P(at least one of them succeeds).

Each path is the list of independent events it needs (its moves, each succeeding with its
probability); two paths through one move share that event. The aggregate is then the probability
of a union of conjunctions over independent events, computed exactly by *factoring* (condition on
the event most paths share: P = p·P(paths | it succeeded) + (1 − p)·P(paths | it failed)), with
three reductions that keep it small: moves of probability 1 drop out, a path that needs everything
another path needs and more adds nothing, and groups of paths that share no event combine by
noisy-OR, 1 − Π(1 − P(group)). Independent paths therefore cost nothing beyond the noisy-OR, and
the exact answer has the properties a risk figure needs: never below the best path's probability,
never lowered by one more path, at most 1, and at most the union bound Σ p(path).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

Event = tuple[Hashable, float]  # (what, probability): one move, or a whole path as one event


def union_probability(paths: Iterable[Sequence[Event]]) -> float:
    """P(at least one path succeeds), paths given as the independent events each needs."""
    prob: dict[Hashable, float] = {}
    sets: set[frozenset[Hashable]] = set()
    for path in paths:
        needed: set[Hashable] = set()
        possible = True
        for key, p in path:
            p = min(max(float(p), 0.0), 1.0)
            if p <= 0.0:
                possible = False
                break
            if p < 1.0:
                # one event has one probability; a key met twice keeps the first (callers keep them equal)
                prob.setdefault(key, p)
                needed.add(key)
        if not possible:
            continue
        if not needed:
            return 1.0  # a certain path
        sets.add(frozenset(needed))
    return _union(_minimal(sets), prob, {})


def _minimal(sets: Iterable[frozenset[Hashable]]) -> frozenset[frozenset[Hashable]]:
    """Drop every path that needs all another path needs (it succeeds only when that one does)."""
    ordered = sorted(set(sets), key=len)
    kept: list[frozenset[Hashable]] = []
    for s in ordered:
        if not any(k <= s for k in kept):
            kept.append(s)
    return frozenset(kept)


def _components(sets: frozenset[frozenset[Hashable]]) -> list[frozenset[frozenset[Hashable]]]:
    """Groups of paths that share no event with the other groups."""
    groups: list[tuple[set[Hashable], list[frozenset[Hashable]]]] = []
    for s in sets:
        touching = [g for g in groups if g[0] & s]
        keys, members = set(s), [s]
        for g in touching:
            keys |= g[0]
            members += g[1]
            groups.remove(g)
        groups.append((keys, members))
    return [frozenset(m) for _, m in groups]


def _union(sets: frozenset[frozenset[Hashable]], prob: dict[Hashable, float],
           memo: dict[frozenset[frozenset[Hashable]], float]) -> float:
    if not sets:
        return 0.0
    if frozenset() in sets:
        return 1.0
    if sets in memo:
        return memo[sets]
    if len(sets) == 1:
        result = math.prod(prob[k] for k in next(iter(sets)))
    else:
        parts = _components(sets)
        if len(parts) > 1:
            result = 1.0 - math.prod(1.0 - _union(part, prob, memo) for part in parts)
        else:
            counts = Counter(k for s in sets for k in s)
            pivot = max(counts, key=lambda k: (counts[k], -prob[k], repr(k)))
            p = prob[pivot]
            succeeded = _minimal(s - {pivot} for s in sets)
            failed = frozenset(s for s in sets if pivot not in s)
            result = p * _union(succeeded, prob, memo) + (1.0 - p) * _union(failed, prob, memo)
    result = min(1.0, max(0.0, result))
    memo[sets] = result
    return result
