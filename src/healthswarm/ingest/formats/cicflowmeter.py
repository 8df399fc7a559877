"""CICFlowMeter flow CSV (the CIC-IDS2017 layout: one header row, then one row per flow).

Both spellings of the columns are read: the original CIC-IDS2017 files (`Source IP`, ` Destination
Port`, `Total Fwd Packets`, names with leading spaces) and the corrected 2021 release / newer
CICFlowMeter (`Src IP`, `Dst Port`, `Total Fwd Packet`, an `id` and `Attempted Category` column).
Names are stripped of spaces; a repeated name (the original files have `Fwd Header Length` twice)
gets `.1`, as pandas names it.

ECS: `source.ip/port`, `destination.ip/port`, `network.transport` and `network.iana_number` (from
the protocol number), `event.duration` (CICFlowMeter writes microseconds; ECS wants nanoseconds),
`source.bytes/packets`, `destination.bytes/packets`, `network.bytes/packets`, `flow.id`, and the
ground-truth `Label` as `flow.label` (kept for evaluation: no detector may use it as a feature).
`original` is the whole row, column → text, so every numeric feature is there as written: the flow
classifier's pipeline detector (detect/learn/flow_detector.py) builds its feature row from it. `Label`
(and `Attempted Category`) stay there too, but no detector reads them.

Feature columns (every column but the identifiers, addresses, Timestamp and labels) must be numbers; a
row with anything else there is rejected naming the line and the column. `NaN`, `Infinity` and
`-Infinity` are numbers CICFlowMeter writes (its rate columns divide by the flow duration, zero for a
one-packet flow), so they are accepted and kept as written; the model's feature pipeline turns them into
-1 ("rate undefined") in the four rate columns, as training did, and skips (counts) a flow that has one
anywhere else.

Timestamps: CIC-IDS2017 wrote local (Atlantic) times without a zone, as `3/7/2017 8:55`,
`07/07/2017 03:30:00 PM` (day first) or, in the corrected release, `2017-07-06 16:25:41.298564`.
There is no zone to convert from, so they are taken as UTC, like every zone-less time here. A file
without a Timestamp column (the MachineLearningCVE variant) gets the epoch, deterministic and
plainly not a real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, ClassVar

from healthswarm.ingest.formats.rows import csv_rows, header_cells, header_failure, read_header
from healthswarm.model import Event, Reject

NAME = "cicflowmeter"
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)

TRANSPORTS = {"0": "hopopt", "1": "icmp", "2": "igmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp",
              "58": "ipv6-icmp", "132": "sctp"}

# canonical (lower-case, single-spaced) column name -> ECS field, for both spellings
_INT_FIELDS = {
    "src port": "source.port", "source port": "source.port",
    "dst port": "destination.port", "destination port": "destination.port",
    "total fwd packet": "source.packets", "total fwd packets": "source.packets",
    "total bwd packets": "destination.packets", "total backward packets": "destination.packets",
    "total length of fwd packet": "source.bytes", "total length of fwd packets": "source.bytes",
    "total length of bwd packet": "destination.bytes", "total length of bwd packets": "destination.bytes",
}
# columns that are not flow statistics: everything else must be a number (NaN/Infinity included)
_NOT_FEATURES = frozenset(("id", "flow id", "src ip", "source ip", "dst ip", "destination ip", "timestamp", "label",
                           "attempted category"))
_TEXT_FIELDS = {"src ip": "source.ip", "source ip": "source.ip", "dst ip": "destination.ip",
                "destination ip": "destination.ip", "flow id": "flow.id", "label": "flow.label"}


def canonical(name: str) -> str:
    return " ".join(name.split()).lower()


def parse_time(text: str) -> datetime | None:
    """CIC-IDS2017 times (see the module docstring) as UTC; None when not one of those shapes."""
    value = text.strip()
    if not value:
        return None
    if "-" in value[:10]:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    parts = value.split()
    if len(parts) not in (2, 3):
        return None
    date, clock = parts[0].split("/"), parts[1].split(":")
    if len(date) != 3 or len(clock) not in (2, 3):
        return None
    try:
        day, month, year = (int(p) for p in date)
        hour, minute = int(clock[0]), int(clock[1])
        seconds = float(clock[2]) if len(clock) == 3 else 0.0
        if len(parts) == 3:
            meridian = parts[2].upper()
            if meridian not in ("AM", "PM") or not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if meridian == "PM" else 0)
        whole = int(seconds)
        return datetime(year, month, day, hour, minute, whole, round((seconds - whole) * 1e6), tzinfo=UTC)
    except ValueError:
        return None


class CicFlowMeterFormat:
    name: ClassVar[str] = NAME
    description: ClassVar[str] = "CICFlowMeter flow CSV (CIC-IDS2017 layout)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        first = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace")
        names = {canonical(n) for n in first.split(",")}
        if "flow duration" in names and ("label" in names or "fwd iat total" in names or "flow bytes/s" in names):
            return 0.95
        return 0.0

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        text, raw, header_end, header_line = read_header(stream)
        if text is None:
            yield from header_failure(stream, source, start, NAME, raw, header_end, header_line)
            return
        cells = header_cells(text)
        if cells is None:
            yield from header_failure(stream, source, start, NAME, raw, header_end, header_line, decoded=True)
            return
        names = _unique(cells)
        canon = [canonical(n) for n in names]
        ints = [(i, _INT_FIELDS[c]) for i, c in enumerate(canon) if c in _INT_FIELDS]
        texts = [(i, _TEXT_FIELDS[c]) for i, c in enumerate(canon) if c in _TEXT_FIELDS]
        proto_at = canon.index("protocol") if "protocol" in canon else None
        time_at = canon.index("timestamp") if "timestamp" in canon else None
        duration_at = canon.index("flow duration") if "flow duration" in canon else None
        done = {i for i, _ in ints} | {proto_at, duration_at}
        checked = [i for i, c in enumerate(canon) if c not in _NOT_FEATURES and i not in done]
        for item in csv_rows(stream, source, max(start, header_end), NAME, len(names)):
            if type(item) is not tuple:
                yield item
                continue
            cells, line, position, record = item
            if time_at is None:
                ts: datetime | None = NO_TIME
            elif (ts := parse_time(cells[time_at])) is None:
                reason = f"line {record}: invalid Timestamp {cells[time_at][:40]!r}"
                yield Reject(source, position, reason, line, NAME, record)
                continue
            f: dict[str, Any] = {
                "event.kind": "event", "event.module": "cicflowmeter", "event.dataset": "cicflowmeter.flow",
                "observer.type": "cicflowmeter", "event.category": ["network"], "event.type": ["connection"],
            }
            for i, ecs in texts:
                if value := cells[i].strip():
                    f[ecs] = value
            bad = None
            for i, ecs in ints:
                value = cells[i].strip()
                if value:
                    try:
                        f[ecs] = int(value)
                    except ValueError:
                        bad = f"line {record}: column {names[i]!r}: {value[:40]!r} is not a whole number"
                        break
            if bad is None and duration_at is not None and (value := cells[duration_at].strip()):
                try:
                    f["event.duration"] = int(float(value) * 1000)
                except (ValueError, OverflowError):
                    bad = f"line {record}: column 'Flow Duration': {value[:40]!r} is not a number"
            if bad is None:
                i = -1
                try:
                    for i in checked:
                        float(cells[i])
                except ValueError:
                    bad = f"line {record}: column {names[i]!r}: {cells[i].strip()[:40]!r} is not a number"
            if bad is not None:
                yield Reject(source, position, bad, line, NAME, record)
                continue
            if proto_at is not None and (proto := cells[proto_at].strip()):
                f["network.iana_number"] = proto
                if proto in TRANSPORTS:
                    f["network.transport"] = TRANSPORTS[proto]
            if "source.bytes" in f and "destination.bytes" in f:
                f["network.bytes"] = f["source.bytes"] + f["destination.bytes"]
            if "source.packets" in f and "destination.packets" in f:
                f["network.packets"] = f["source.packets"] + f["destination.packets"]
            yield Event(ts, f, dict(zip(names, cells, strict=True)), source, record, position)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            out.append(f"{name}.{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out


FORMAT = CicFlowMeterFormat()
