"""IoMT telemetry as JSON: what medical devices (pumps, monitors, sensors) publish over MQTT.

Accepted shape: one JSON object per reading, one per line (JSON lines, what a file of captured MQTT
messages holds), or a JSON array of them (a batched MQTT payload, or a file), or one pretty-printed
object. For example:

    {"device_id": "pump-icu-07", "device_type": "infusion_pump", "ts": "2024-05-01T10:00:00Z",
     "patient_id": "P-1234", "location": "ICU bed 7", "status": "running",
     "metrics": {"rate_ml_h": 12.5, "volume_infused_ml": 230, "battery_pct": 87, "occlusion": false}}

The mapping is tolerant of the usual spellings:
- device: `device_id` / `deviceId` / `device_uid` / `sensor_id` / `serial`, or `device` as a string
  (the id) or an object (`id`, `type`, `model`, `manufacturer`, `name`) → `device.id`, `device.type`,
  `device.model.identifier`, `device.manufacturer`; `device_type` / `deviceType` / `type` / `kind`.
- time (required; a reading without one is rejected, not stamped with the ingest time): `ts` /
  `timestamp` / `time` / `@timestamp` / `datetime` / `observed_at` / `measured_at`, ISO 8601 text or
  epoch seconds, milliseconds, microseconds or nanoseconds (told apart by magnitude).
- readings: `metrics` / `readings` / `values` / `measurements` / `vitals` / `telemetry` / `data`, an
  object (nested objects flatten to dotted names) or a list of `{"name": ..., "value": ..., "unit": ...}`
  → `iomt.metrics.<name>` (and `iomt.units.<name>`). Without such a container, every other scalar
  top-level member is taken as a reading.
- `patient_id` / `patientId` / `patient` → `patient.id` (kept apart so later stages can protect it);
  `location` / `ward` / `room` / `bed` → `iomt.location`; `status` / `state` → `iomt.status`;
  `alarm` / `alarms` / `alert` → `iomt.alarm`; `firmware` → `iomt.firmware`; `topic` → `iomt.topic`;
  `ip` / `ip_address` → `source.ip`; data-set ground truth `label` / `attack_type` → `iomt.label` /
  `iomt.attack_type`.
Always: `event.kind` "metric", `event.module` "iomt", `event.dataset` "iomt.telemetry" (or
"iomt.<device type>"), `observer.type` "iomt". `original` is the object as written.

Positions: byte offsets for JSON lines; for an array or a single document, the element ordinal
(1-based), as for container formats: an array is read whole (it is one document).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, ClassVar

import orjson

from healthswarm.ingest.formats.lines import max_line_bytes
from healthswarm.ingest.formats.rows import BOM, head_objects, json_kind, json_lines
from healthswarm.ingest.formats.timestamps import from_epoch, parse_iso
from healthswarm.model import Event, Reject

NAME = "iomt-json"
_PEEK = 1024 * 1024

ID_KEYS = ("device_id", "deviceId", "device_uid", "deviceUid", "sensor_id", "sensorId", "serial", "serial_number")
TYPE_KEYS = ("device_type", "deviceType", "type", "kind")
TIME_KEYS = ("ts", "timestamp", "time", "@timestamp", "datetime", "observed_at", "observedAt", "measured_at")
METRIC_KEYS = ("metrics", "readings", "values", "measurements", "vitals", "telemetry", "data")
_SIMPLE = {
    "patient_id": "patient.id", "patientId": "patient.id", "patient": "patient.id",
    "location": "iomt.location", "ward": "iomt.location", "room": "iomt.location", "bed": "iomt.location",
    "status": "iomt.status", "state": "iomt.status", "alarm": "iomt.alarm", "alarms": "iomt.alarm",
    "alert": "iomt.alarm", "firmware": "iomt.firmware", "topic": "iomt.topic", "ip": "source.ip",
    "ip_address": "source.ip", "label": "iomt.label", "attack_type": "iomt.attack_type",
    "model": "device.model.identifier", "manufacturer": "device.manufacturer", "vendor": "device.manufacturer",
}
# members that mark a record as some other format's, never telemetry
FOREIGN = frozenset((
    "resourceType", "EventID", "Event", "event_type", "uid", "id.orig_h", "_path", "winlog", "System", "EventData",
    "Channel", "MSH", "fhir_comments",
))
_CONSUMED = frozenset((*ID_KEYS, *TYPE_KEYS, *TIME_KEYS, *METRIC_KEYS, *_SIMPLE, "device"))
_MAX_DEPTH = 4


def when(value: Any) -> datetime | None:
    """A telemetry time: ISO text or an epoch number in s, ms, µs or ns (by magnitude)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            return parse_iso(text)
    if isinstance(value, int | float):
        magnitude = abs(value)
        if magnitude > 1e17:
            value = value / 1e9
        elif magnitude > 1e14:
            value = value / 1e6
        elif magnitude > 1e11:
            value = value / 1e3
        return from_epoch(value)
    return None


def _flatten(prefix: str, value: Any, out: dict[str, Any], depth: int = 0) -> None:
    if isinstance(value, dict) and depth < _MAX_DEPTH:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out, depth + 1)
    else:
        out[prefix] = value


def metrics_fields(f: dict[str, Any], container: Any) -> None:
    """Readings into `iomt.metrics.*` (and `iomt.units.*` for name/value/unit lists)."""
    if isinstance(container, dict):
        for key, value in container.items():
            _flatten(f"iomt.metrics.{key}", value, f)
    elif isinstance(container, list):
        for entry in container:
            if not isinstance(entry, dict):
                continue
            name = entry.get("name", entry.get("metric", entry.get("type")))
            if not isinstance(name, str) or "value" not in entry:
                continue
            f[f"iomt.metrics.{name}"] = entry["value"]
            if isinstance(unit := entry.get("unit"), str):
                f[f"iomt.units.{name}"] = unit


def is_telemetry(o: dict[str, Any]) -> bool:
    """The shape sniffing trusts: a device identity and a time, and nothing of another format."""
    if not FOREIGN.isdisjoint(o):
        return False
    has_device = any(k in o for k in ID_KEYS) or isinstance(o.get("device"), str | dict)
    return has_device and any(k in o for k in TIME_KEYS)


def normalise(o: dict[str, Any]) -> tuple[datetime | None, dict[str, Any], str]:
    """(time, ECS fields, reason when rejected) of one telemetry object."""
    time_key = next((k for k in TIME_KEYS if k in o), None)
    if time_key is None:
        return None, {}, f"no time member (one of {', '.join(TIME_KEYS)})"
    ts = when(o[time_key])
    if ts is None:
        return None, {}, f"invalid time in {time_key!r}: {str(o[time_key])[:64]!r}"
    f: dict[str, Any] = {"event.kind": "metric", "event.module": "iomt", "observer.type": "iomt"}
    device = o.get("device")
    if isinstance(device, dict):
        for key, ecs in (("id", "device.id"), ("type", "device.type"), ("model", "device.model.identifier"),
                         ("manufacturer", "device.manufacturer"), ("name", "device.model.name")):
            if (value := device.get(key)) is not None:
                f[ecs] = value
    elif isinstance(device, str):
        f["device.id"] = device
    for key in ID_KEYS:
        if (value := o.get(key)) is not None:
            f["device.id"] = value
            break
    for key in TYPE_KEYS:
        if isinstance(value := o.get(key), str):
            f["device.type"] = value
            break
    for key, ecs in _SIMPLE.items():
        if (value := o.get(key)) is not None and ecs not in f:
            if isinstance(value, dict) and "id" in value:  # "patient": {"id": ...}
                value = value["id"]
            f[ecs] = value
    container_key = next((k for k in METRIC_KEYS if isinstance(o.get(k), dict | list)), None)
    if container_key is not None:
        metrics_fields(f, o[container_key])
    else:
        metrics_fields(f, {k: v for k, v in o.items() if k not in _CONSUMED and not isinstance(v, dict | list)})
    if "device.id" not in f and "device.type" not in f:
        # a reading belongs to a device: Suricata, Zeek or any other JSON with a time is not telemetry
        return None, {}, (f"no device: expected one of device, {', '.join(ID_KEYS[:3])}, … or "
                          f"{', '.join(TYPE_KEYS)} (is this IoMT telemetry?)")
    device_type = f.get("device.type")
    f["event.dataset"] = f"iomt.{device_type}" if isinstance(device_type, str) and device_type else "iomt.telemetry"
    return ts, f, ""


def _first_array_objects(head: bytes) -> list[dict]:
    """The first objects of a (possibly cut) JSON array head."""
    text = head.decode("utf-8", "ignore").lstrip("\ufeff \t\r\n")[1:]
    decoder, out, index = json.JSONDecoder(), [], 0
    while len(out) < 5:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        try:
            value, index = decoder.raw_decode(text, index)
        except ValueError:
            break
        if not isinstance(value, dict):
            break
        out.append(value)
    return out


class IomtJsonFormat:
    name: ClassVar[str] = NAME
    description: ClassVar[str] = "IoMT device telemetry as JSON (lines, arrays or one object)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        body = head.lstrip(BOM + b" \t\r\n")
        if body.startswith(b"["):
            objects = _first_array_objects(body)
        else:
            objects = head_objects(head)
            if not objects and body.startswith(b"{"):
                try:
                    whole = orjson.loads(body)
                except orjson.JSONDecodeError:
                    whole = None
                objects = [whole] if isinstance(whole, dict) else []
        if not objects:
            return 0.0
        good = sum(1 for o in objects if is_telemetry(o))
        return 0.8 if good == len(objects) else 0.0

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        head = stream.read(_PEEK)
        body = head.lstrip(BOM + b" \t\r\n")
        document: Any = None
        data = head
        if body.startswith(b"[") or (body.startswith(b"{") and len(head) < _PEEK and b"\n" in body.rstrip()):
            limit = max_line_bytes()
            if body.startswith(b"["):  # one document, read whole within [ingest] max_record_bytes
                data = head + stream.read(max(0, limit - len(head)) + 1)
            try:
                # a longer one is read as lines, each bounded (an oversized line is one reject)
                document = orjson.loads(data.lstrip(BOM + b" \t\r\n")) if len(data) <= limit else None
            except orjson.JSONDecodeError:
                document = None  # not one document: read it as JSON lines, which says where it breaks
        if isinstance(document, list) and document and not any(isinstance(o, dict) for o in document):
            if start < 1:  # `[1,2,3]`: one bad record, not one per number
                reason = f"expected IoMT telemetry objects, found an array of {len(document)} non-objects"
                yield Reject(source, 1, reason, data[:4096], NAME, 1)
            return
        if isinstance(document, list | dict):
            yield from self._document(document if isinstance(document, list) else [document], source, start)
            return
        if stream.seekable():
            stream.seek(0)
            lines_stream: BinaryIO = stream
        else:
            lines_stream = _Prefixed(data, stream)  # type: ignore[assignment]
        for item in json_lines(lines_stream, source, start, NAME):
            if type(item) is not tuple:
                yield item
                continue
            o, line, position, record = item
            ts, f, reason = normalise(o)
            if ts is None:
                yield Reject(source, position, f"line {record}: {reason}", line, NAME, record)
                continue
            yield Event(ts, f, o, source, record, position)

    def _document(self, items: list[Any], source: str, start: int) -> Iterator[Event | Reject]:
        for ordinal, o in enumerate(items, 1):
            if ordinal <= start:
                continue
            if not isinstance(o, dict):
                raw = orjson.dumps(o)
                reason = f"element {ordinal}: JSON value is {json_kind(o)}, expected an object"
                yield Reject(source, ordinal, reason, raw, NAME, ordinal)
                continue
            ts, f, reason = normalise(o)
            if ts is None:
                yield Reject(source, ordinal, f"element {ordinal}: {reason}", orjson.dumps(o), NAME, ordinal)
                continue
            yield Event(ts, f, o, source, ordinal, ordinal)


class _Prefixed:
    """A non-seekable stream whose first bytes were already read to look at them (all iter_lines needs)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0 or size >= len(self._head):
            out, self._head = self._head, b""
        else:
            out, self._head = self._head[:size], self._head[size:]
        return out


FORMAT = IomtJsonFormat()
