"""Bounded streaming state the protocol analytics share: warm-up, sliding windows, learned rates, key tables.

Times are event times in epoch seconds. Streams are meant to arrive in time order; a time earlier than
the last one seen is taken as the last one, so a late event joins the current window instead of
corrupting it.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Warmup:
    """Learning only, no alerts, until `events` events were seen or `seconds` of event time have passed
    since the first one, whichever comes first."""

    __slots__ = ("events", "first", "seconds", "seen")

    def __init__(self, events: int, seconds: float) -> None:
        self.events, self.seconds = events, seconds
        self.seen = 0
        self.first: float | None = None

    def observe(self, t: float) -> bool:
        """Count one event; True when warm-up is over (the event may alert)."""
        if self.first is None:
            self.first = t
        self.seen += 1
        return self.done(t)

    def done(self, t: float) -> bool:
        return self.seen > self.events or (self.first is not None and t - self.first >= self.seconds)


class SlidingCount:
    """Events in the last `window` seconds (at most `cap` remembered: a flood cannot grow memory)."""

    __slots__ = ("times", "window")

    def __init__(self, window: float, cap: int = 100_000) -> None:
        self.window = window
        self.times: deque[float] = deque(maxlen=cap)

    def add(self, t: float) -> int:
        if self.times and t < self.times[-1]:
            t = self.times[-1]
        self.times.append(t)
        return self.size(t)

    def size(self, t: float) -> int:
        """Events in the window that ends at `t`."""
        while self.times and self.times[0] <= t - self.window:
            self.times.popleft()
        return len(self.times)


class SlidingDistinct:
    """Distinct values seen in the last `window` seconds (at most `cap` observations remembered)."""

    __slots__ = ("cap", "counts", "items", "window")

    def __init__(self, window: float, cap: int = 10_000) -> None:
        self.window, self.cap = window, cap
        self.items: deque[tuple[float, Hashable]] = deque()
        self.counts: Counter[Hashable] = Counter()

    def add(self, t: float, value: Hashable) -> int:
        if self.items and t < self.items[-1][0]:
            t = self.items[-1][0]
        self.items.append((t, value))
        self.counts[value] += 1
        while len(self.items) > self.cap:
            self._drop()
        return self.size(t)

    def size(self, t: float) -> int:
        """Distinct values in the window that ends at `t`."""
        while self.items and self.items[0][0] <= t - self.window:
            self._drop()
        return len(self.counts)

    def _drop(self) -> None:
        _, old = self.items.popleft()
        self.counts[old] -= 1
        if not self.counts[old]:
            del self.counts[old]


class BucketRate:
    """A learned rate: the exponentially weighted mean of a per-bucket figure (a count, or a number of
    distinct values) over fixed buckets of `bucket` seconds, empty buckets included.

    `add` feeds the current bucket; when time moves into a later bucket, the finished one updates the
    mean unless `hold()` was called for it (an anomalous bucket must not become the norm).
    """

    __slots__ = ("alpha", "bucket", "cap", "current", "held", "index", "mean", "seen", "values")

    def __init__(self, bucket: float, alpha: float, cap: int = 10_000) -> None:
        self.bucket, self.alpha, self.cap = bucket, alpha, cap
        self.index: int | None = None
        self.current = 0
        self.values: set[Hashable] | None = None
        self.mean = 0.0
        self.seen = 0  # finished buckets folded into the mean
        self.held = False

    def add(self, t: float, value: Hashable | None = None) -> int:
        """Add one event (or one value, for a distinct count); the current bucket's figure."""
        self._roll(int(t // self.bucket))
        if value is None:
            self.current += 1
        else:
            if self.values is None:
                self.values = set()
            if len(self.values) < self.cap:  # past the cap the figure saturates
                self.values.add(value)
            self.current = len(self.values)
        return self.current

    def hold(self) -> None:
        self.held = True

    def _roll(self, index: int) -> None:
        if self.index is None:
            self.index = index
            return
        if index <= self.index:
            return
        if not self.held:
            self.mean = self.alpha * self.current + (1 - self.alpha) * self.mean
            self.seen += 1
        gap = min(index - self.index - 1, 10_000)  # empty buckets between: the rate decays towards 0
        self.mean *= (1 - self.alpha) ** gap
        self.seen += gap
        self.index, self.current, self.values, self.held = index, 0, None, False


class KeyTable(Generic[K, V]):
    """Per-key state with at most `limit` keys: the least recently used key is forgotten first."""

    __slots__ = ("evicted", "factory", "items", "limit")

    def __init__(self, factory: Callable[[], V], limit: int) -> None:
        self.factory, self.limit = factory, limit
        self.items: OrderedDict[K, V] = OrderedDict()
        self.evicted = 0

    def get(self, key: K) -> V:
        value = self.items.get(key)
        if value is None:
            value = self.items[key] = self.factory()
            if len(self.items) > self.limit:
                self.items.popitem(last=False)
                self.evicted += 1
        else:
            self.items.move_to_end(key)
        return value

    def peek(self, key: K) -> V | None:
        return self.items.get(key)

    def __len__(self) -> int:
        return len(self.items)


class Budget:
    """At most `per_hour` alerts in any hour of event time; what is over budget is refused and counted."""

    __slots__ = ("per_hour", "sent", "suppressed")

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self.sent: deque[float] = deque()
        self.suppressed = 0

    def allow(self, t: float) -> bool:
        while self.sent and self.sent[0] <= t - 3600:
            self.sent.popleft()
        if len(self.sent) >= self.per_hour:
            self.suppressed += 1
            return False
        self.sent.append(t)
        return True


def remember(known: set[str], value: str, cap: int) -> bool:
    """Add `value` to a learned set of at most `cap` values; False when the set is full (not learned)."""
    if value in known:
        return True
    if len(known) >= cap:
        return False
    known.add(value)
    return True


class Burst:
    """A count over a sliding window judged against its own learned rate, with hysteresis: `step` fires once
    when the count reaches `minimum` and exceeds `factor` × the learned rate, then stays quiet until the count
    falls below half the minimum; buckets during a burst are held out of the learned rate."""

    __slots__ = ("active", "rate", "window")

    def __init__(self, window: float, alpha: float) -> None:
        self.window = SlidingCount(window)
        self.rate = BucketRate(window, alpha)
        self.active = False

    def step(self, t: float, armed: bool, minimum: int, factor: float) -> tuple[bool, int, float]:
        """(fired, count in the window, learned rate) after one more event at `t`."""
        count = self.window.add(t)
        self.rate.add(t)
        expected = self.rate.mean
        if self.active:
            self.rate.hold()
            self.active = count >= minimum / 2
            return False, count, expected
        if not armed or count < minimum or count <= factor * expected:
            return False, count, expected
        self.active = True
        self.rate.hold()
        return True, count, expected
