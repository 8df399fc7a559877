"""TON_IoT telemetry CSV (Train_Test_IoT_<Device>.csv): one reading per row, with label and attack type.

Columns: `date` (`25-Apr-19`) and `time` (` 19:19:40 `, padded), or `ts` (epoch seconds) in the
full release, then the device's readings, then `label` (0 normal, 1 attack) and `type` (the attack:
normal, ddos, injection, password, xss, ransomware, backdoor, scanning, mitm). Devices: fridge,
thermostat, GPS tracker, garage door, Modbus, motion light, weather.

ECS: `event.kind` "metric", `event.dataset` "ton_iot.<device>", `device.type` (from the reading
columns, else the file name), `device.id`, readings under `iomt.metrics.<column>` (numbers as numbers,
the rest as stripped text), the ground truth as `iomt.label` / `iomt.attack_type` (evaluation only,
never a feature). `original` is the row, column → text.

`device.id`: TON_IoT names no device, and one file holds one device's readings, so the id is the
source's file name without `.csv` (`Train_Test_IoT_Fridge`). The telemetry detector keeps one reading
sequence per id, so two devices' files ingested together are not taken for one device.

Times: TON_IoT wrote testbed local time (Canberra) without a zone; there is nothing to convert from,
so they are taken as UTC, like every zone-less time here. `ts`, when present, is epoch seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, ClassVar

from healthswarm.ingest.formats.rows import csv_rows, header_cells, header_failure, number, read_header
from healthswarm.ingest.formats.timestamps import from_epoch
from healthswarm.model import Event, Reject

NAME = "ton-iot"

# a column only one device writes -> that device
SIGNATURES = (
    ("fridge_temperature", "fridge"),
    ("current_temperature", "thermostat"),
    ("thermostat_status", "thermostat"),
    ("latitude", "gps_tracker"),
    ("door_state", "garage_door"),
    ("fc1_read_input_register", "modbus"),
    ("motion_status", "motion_light"),
    ("pressure", "weather"),
    ("humidity", "weather"),
)
FILE_DEVICES = {
    "fridge": "fridge", "thermostat": "thermostat", "gps_tracker": "gps_tracker", "garage_door": "garage_door",
    "modbus": "modbus", "motion_light": "motion_light", "weather": "weather",
}
_TIME_COLUMNS = frozenset(("ts", "date", "time"))
_TRUTH = {"label": "iomt.label", "type": "iomt.attack_type"}
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                       "dec"), 1)}


def device_of(columns: list[str], filename: str) -> str:
    lowered = {c.lower() for c in columns}
    for column, device in SIGNATURES:
        if column in lowered:
            return device
    stem = os.path.basename(filename).lower().rsplit(".", 1)[0]
    for key, device in FILE_DEVICES.items():
        if stem.endswith(key):
            return device
    return "unknown"


def parse_date_time(date: str, clock: str) -> datetime | None:
    """`25-Apr-19` (or `2019-04-25`) and `19:19:40`, as UTC (see the module docstring)."""
    d, c = date.strip(), clock.strip()
    try:
        if d.count("-") == 2 and d[:4].isdigit():
            year, month, day = (int(p) for p in d.split("-"))
        else:
            day_text, month_text, year_text = d.split("-")
            day, month, year = int(day_text), _MONTHS[month_text[:3].lower()], int(year_text)
            if year < 100:
                year += 2000
        parts = c.split(":")
        if len(parts) not in (2, 3):
            return None
        seconds = float(parts[2]) if len(parts) == 3 else 0.0
        whole = int(seconds)
        return datetime(year, month, day, int(parts[0]), int(parts[1]), whole, round((seconds - whole) * 1e6),
                        tzinfo=UTC)
    except (ValueError, KeyError, OverflowError):
        return None


class TonIotFormat:
    name: ClassVar[str] = NAME
    description: ClassVar[str] = "TON_IoT device telemetry CSV (fridge, thermostat, GPS, garage door, Modbus, ...)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        first = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
        columns = [c.strip().lower() for c in first.split(",")]
        if "label" not in columns or "type" not in columns:
            return 0.0
        if not ({"date", "time"} <= set(columns) or "ts" in columns):
            return 0.0
        return 0.9 if device_of(columns, filename) != "unknown" else 0.6

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        text, raw, header_end, header_line = read_header(stream)
        if text is None:
            yield from header_failure(stream, source, start, NAME, raw, header_end, header_line)
            return
        names = header_cells(text)
        if names is None:
            yield from header_failure(stream, source, start, NAME, raw, header_end, header_line, decoded=True)
            return
        lowered = [n.lower() for n in names]
        device = device_of(names, source)
        ts_at = lowered.index("ts") if "ts" in lowered else None
        date_at = lowered.index("date") if "date" in lowered else None
        time_at = lowered.index("time") if "time" in lowered else None
        truth = [(i, _TRUTH[n]) for i, n in enumerate(lowered) if n in _TRUTH]
        readings = [(i, f"iomt.metrics.{names[i]}") for i, n in enumerate(lowered)
                    if n not in _TIME_COLUMNS and n not in _TRUTH]
        dataset = f"ton_iot.{device}"
        device_id = os.path.basename(source).rsplit(".", 1)[0] or source
        dates: dict[tuple[str, str], datetime | None] = {}
        for item in csv_rows(stream, source, max(start, header_end), NAME, len(names)):
            if type(item) is not tuple:
                yield item
                continue
            cells, line, position, record = item
            ts: datetime | None = None
            if ts_at is not None:
                try:
                    ts = from_epoch(float(cells[ts_at]))
                except ValueError:
                    ts = None
                shown = cells[ts_at]
            elif date_at is not None and time_at is not None:
                key = (cells[date_at], cells[time_at])
                if key not in dates:  # readings come in bursts: the same second many times
                    if len(dates) > 100_000:
                        dates.clear()
                    dates[key] = parse_date_time(*key)
                ts = dates[key]
                shown = f"{cells[date_at]} {cells[time_at]}"
            else:
                shown = "no ts, or date and time, columns"
            if ts is None:
                yield Reject(source, position, f"line {record}: invalid time: {shown[:60]!r}", line, NAME, record)
                continue
            f: dict[str, Any] = {
                "event.kind": "metric", "event.module": "ton_iot", "event.dataset": dataset,
                "observer.type": "ton-iot", "device.type": device,
                "device.id": device_id,
            }
            for i, ecs in readings:
                if value := cells[i].strip():
                    f[ecs] = number(value)
            for i, ecs in truth:
                if value := cells[i].strip():
                    f[ecs] = number(value)
            yield Event(ts, f, dict(zip(names, cells, strict=True)), source, record, position)


FORMAT = TonIotFormat()
