"""HL7 v2 messages: files of one or many messages, and MLLP-framed streams.

Segments may end with CR (the standard), LF or CRLF; a message starts at an `MSH` segment or an MLLP
start byte (0x0B) and ends before the next one or at an MLLP end (0x1C, optionally followed by CR).
Batch envelope segments (FHS, BHS, BTS, FTS) belong to no message and carry no event: they are
passed over. `original` is the message text as written (without MLLP framing); `position` is the
byte offset just past the message.

Fields: `hl7.message_type` (`ADT^A01`), `hl7.trigger_event`,
`hl7.message_structure`, `hl7.control_id`, `hl7.processing_id`, `hl7.version`,
`hl7.sending_application` / `hl7.sending_facility` / `hl7.receiving_application` /
`hl7.receiving_facility` (first component, the namespace id), `event.action`.
The visit (PV1): `hl7.patient_class`, `hl7.location` and `hl7.location.ward|room|bed|facility|building|floor`,
`hl7.hospital_service`, `hl7.attending_doctor.id|name`, `hl7.referring_doctor.id|name`,
`hl7.admitting_doctor.id|name` (clinicians are staff, not patient data; `.ids` when PV1 repeats them),
`hl7.admit_time` / `hl7.discharge_time` (PV1-44/45, ISO), `hl7.event_occurred` (EVN-6, ISO).
Patient data stay in `patient.*` only: `patient.id` (PID-3, first identifier), `patient.mrn`
(the first PID-3 identifier of type MR), `patient.identifiers` (every PID-2/3/4 identifier with type
and assigning authority), `patient.name` (PID-5, "FAMILY, GIVEN MIDDLE"). `message` is a summary
that holds no patient data.

Time: MSH-7 (HL7 DTM `YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`), else EVN-2. A time without a zone
is taken as UTC: HL7 says it is the sender's local time, which the receiver cannot know, and a
guess by the receiving host's zone would make the result depend on where it is parsed.

Character set: UTF-8 (ASCII, the HL7 default, is a subset); when the bytes are not UTF-8, the MSH-18
character set is used if Python knows it; otherwise the message is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, BinaryIO, ClassVar

from healthswarm.ingest.formats.lines import max_line_bytes
from healthswarm.model import Event, Reject

_START, _END = 0x0B, 0x1C
_BOM = b"\xef\xbb\xbf"
_SEPARATORS = re.compile(rb"[\r\n\x0b\x1c]")
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_ENVELOPE = {b"FHS", b"BHS", b"BTS", b"FTS"}
# segment → the last field read from it (MSH counts its separator as MSH-1, so MSH-n is split part n-1)
_FIELD_SEGMENTS = {"MSH": 12, "EVN": 6, "PID": 5, "PV1": 45}
_SEGMENT_LIKE = re.compile(rb"[A-Z][A-Z0-9]{2}(?:[^A-Za-z0-9\s]|$)")
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$")
_CHUNK = 1024 * 1024
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the default of [ingest] max_record_bytes, which bounds a message

# MSH-18 values (HL7 table 0211) → Python codecs
_CHARSETS = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/7": "iso8859-7",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UNICODE": "utf-16",
    "ISO IR100": "latin-1",
    "WINDOWS-1252": "cp1252",
    "CP1252": "cp1252",
}

# common trigger events → a verb for event.action
_ACTIONS = {
    "A01": "admit",
    "A02": "transfer",
    "A03": "discharge",
    "A04": "register",
    "A05": "pre-admit",
    "A06": "change-outpatient-to-inpatient",
    "A07": "change-inpatient-to-outpatient",
    "A08": "update-patient",
    "A11": "cancel-admit",
    "A12": "cancel-transfer",
    "A13": "cancel-discharge",
    "A17": "swap-patients",
    "A18": "merge-patient",
    "A23": "delete-visit",
    "A28": "add-person",
    "A31": "update-person",
    "A34": "merge-patient-id",
    "A40": "merge-patient",
    "A47": "change-identifier",
    "R01": "observation-result",
    "O01": "order",
    "O21": "lab-order",
    "O25": "pharmacy-order",
    "T02": "document-add",
    "T10": "document-replace",
    "S12": "appointment-booked",
    "V04": "immunization-update",
}


class Hl7Format:
    name: ClassVar[str] = "hl7"
    description: ClassVar[str] = "HL7 v2 messages (files or MLLP-framed streams)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        text = head.removeprefix(_BOM).lstrip(b"\x0b\r\n ")
        if text[:3] in (b"MSH", b"FHS", b"BHS") and len(text) > 8:
            sep, encoding = text[3:4], text[4:8]
            if not sep.isalnum() and not sep.isspace() and not any(chr(c).isalnum() for c in encoding):
                return 0.95
        return 0.0

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        for record, (raw, end, kind) in enumerate(_split(stream, start), start=1):
            if kind == "orphan":
                yield self._reject(
                    source,
                    end,
                    record,
                    raw,
                    f"{len(raw)} bytes outside any message: expected a message to start with an MSH segment "
                    f"(found {raw[:20]!r})",
                )
            elif kind == "garbage":
                yield self._reject(
                    source, end, record, raw,
                    f"not an HL7 segment: expected a segment id (3 capitals or digits) and a field separator, "
                    f"found {raw[:20]!r}",
                )
            elif kind == "oversized":
                yield self._reject(source, end, record, raw, f"message longer than {max_line_bytes()} bytes")
            else:
                yield self._message(raw, source, end, record)

    def _reject(self, source: str, position: int, record: int, raw: bytes, reason: str) -> Reject:
        return Reject(source=source, position=position, reason=reason, raw=raw, format=self.name, record=record)

    def _message(self, raw: bytes, source: str, position: int, record: int) -> Event | Reject:
        try:
            text = _decode(raw)
        except ValueError as exc:
            return self._reject(source, position, record, raw, str(exc))
        segments = [s for s in re.split(r"\r\n|\r|\n", text) if s]
        problem = _check_structure(segments)
        if problem:
            return self._reject(source, position, record, raw, problem)
        # only MSH-3..12, EVN-2..6, PID-2..5 and PV1-2..45 feed fields: just those are split (every segment was
        # checked above)
        separator = segments[0][3]
        wanted = [
            separator.join(
                segment.split(separator, _FIELD_SEGMENTS[segment[:3]] + 1)[: _FIELD_SEGMENTS[segment[:3]] + 1]
            )
            for segment in segments
            if segment[:3] in _FIELD_SEGMENTS
        ]
        message = _Message("\r".join(wanted))
        if message.problem:
            return self._reject(source, position, record, raw, message.problem)
        msh = message.segment("MSH")
        try:
            fields = _fields(message, msh)
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            return self._reject(source, position, record, raw, f"HL7 fields not readable: {type(exc).__name__}: {exc}")
        stamp_text = message.part(msh, 7)
        timestamp = parse_dtm(stamp_text)
        if timestamp is None:
            evn = message.segment("EVN")
            timestamp = parse_dtm(message.part(evn, 2)) if evn is not None else None
        if timestamp is None:
            return self._reject(
                source,
                position,
                record,
                raw,
                f"MSH-7 date/time of message {stamp_text!r} invalid: expected YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]",
            )
        return Event(timestamp=timestamp, fields=fields, original=text, source=source, record=record, position=position)


class _Splitter:
    """Groups segments into messages; `end` is the stream offset just past the last byte taken."""

    def __init__(self) -> None:
        self.limit = max_line_bytes()  # [ingest] max_record_bytes
        self.parts: list[bytes] = []
        self.kind = ""
        self.size = 0
        self.end = 0

    def flush(self) -> Iterator[tuple[bytes, int, str]]:
        if self.parts:
            kind = "oversized" if self.size > self.limit else self.kind
            yield b"".join(self.parts).strip(b"\r\n"), self.end, kind
        self.parts, self.kind, self.size = [], "", 0

    def segment(self, segment: bytes, sep: bytes, begin: int, end: int) -> Iterator[tuple[bytes, int, str]]:
        tag = segment[:3]
        if sep == b"\x0b":
            end = begin + len(segment)  # the frame start belongs to the next message
        if not segment.strip(b" \t"):
            # a blank line ends a message (files separate messages so), and what follows is another record
            if self.parts:
                self.end = end
                yield from self.flush()
        elif not _SEGMENT_LIKE.match(segment):
            # not a segment at all (a cut line, binary bytes, prose): its own bad record, never glued to the
            # message before it (which would then be rejected too) nor to other bad lines
            yield from self.flush()
            self.kind = "garbage"
            self._add(segment, sep)
            self.end = end
            yield from self.flush()
        elif tag == b"MSH" or tag in _ENVELOPE:
            yield from self.flush()
            if tag == b"MSH":
                self.kind = "message"
                self._add(segment, sep)
            self.end = end
        else:
            if not self.parts:
                self.kind = "orphan"
            self._add(segment, sep)
            self.end = end
        if sep in (b"\x0b", b"\x1c"):
            self.end = end
            yield from self.flush()

    def _add(self, segment: bytes, sep: bytes) -> None:
        self.size += len(segment) + 1
        if self.size <= self.limit:
            self.parts.append(segment + (b"\r" if sep in (b"\x0b", b"\x1c", b"") else sep))


def _split(stream: BinaryIO, start: int) -> Iterator[tuple[bytes, int, str]]:
    """(raw message bytes, end offset, kind) where kind is message, orphan or oversized."""
    if start:
        stream.seek(start)
    splitter = _Splitter()
    offset = start  # stream offset of buffer[0]
    buffer = stream.read(_CHUNK)
    if start == 0 and buffer.startswith(_BOM):
        buffer, offset = buffer[len(_BOM) :], len(_BOM)
    eof = not buffer
    while True:
        begin = 0
        while True:
            match = _SEPARATORS.search(buffer, begin)
            if match is None:
                break
            end_index = match.end()
            sep = match.group()
            if sep in (b"\r", b"\x1c") and end_index == len(buffer) and not eof:
                break  # a LF/CR that belongs to this separator may be in the next chunk
            if buffer[end_index : end_index + 1] in ((b"\n",) if sep == b"\r" else (b"\r",) if sep == b"\x1c" else ()):
                end_index += 1
            yield from splitter.segment(buffer[begin : match.start()], sep, offset + begin, offset + end_index)
            begin = end_index
        buffer, offset = buffer[begin:], offset + begin
        if eof:
            break
        chunk = stream.read(_CHUNK)
        eof = not chunk
        buffer += chunk
        if len(buffer) > 2 * splitter.limit:
            # a runaway segment with no separator: hand it over as one oversized piece
            yield from splitter.flush()
            yield buffer[:4096], offset + len(buffer), "oversized"
            buffer, offset = b"", offset + len(buffer)
    if buffer:
        yield from splitter.segment(buffer, b"", offset, offset + len(buffer))
    yield from splitter.flush()


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        charset = _msh18(raw)
        codec = _CHARSETS.get(charset.upper()) if charset else None
        if codec and codec != "utf-8":
            try:
                return raw.decode(codec)
            except UnicodeDecodeError as inner:
                raise ValueError(f"bytes not valid in the MSH-18 character set {charset!r}: {inner}") from None
        raise ValueError(
            f"bytes not valid UTF-8 at offset {exc.start} and MSH-18 names no known character set "
            f"({charset!r}; HL7's default is ASCII)"
        ) from None


def _msh18(raw: bytes) -> str:
    line = re.split(rb"\r\n|\r|\n", raw, maxsplit=1)[0]
    if len(line) < 4:
        return ""
    parts = line.split(line[3:4])
    # MSH-1 is the separator itself, so MSH-n is parts[n-1]
    return parts[17].decode("ascii", "replace").split("^")[0] if len(parts) > 17 else ""


def _check_structure(segments: list[str]) -> str:
    msh = segments[0] if segments else ""
    if not msh.startswith("MSH") or len(msh) < 8:
        return f"no MSH segment: expected 'MSH|^~\\&|…', found {msh[:20]!r}"
    sep, encoding = msh[3], msh[4:8]
    if sep.isalnum() or sep.isspace():
        return f"MSH-1 field separator {sep!r} invalid: expected a non-alphanumeric character such as '|'"
    encoding = encoding.split(sep)[0]
    if len(encoding) < 3 or len(set(encoding)) != len(encoding) or any(c.isalnum() or c.isspace() for c in encoding):
        return (
            f"MSH-2 encoding characters {encoding!r} invalid: expected 4 distinct non-alphanumeric characters "
            "such as '^~\\&'"
        )
    if sep in encoding:
        return f"MSH-2 encoding characters {encoding!r} repeat the field separator {sep!r}"
    for number, segment in enumerate(segments[1:], start=2):
        if not _SEGMENT_ID.match(segment[:3]) or (len(segment) > 3 and segment[3] != sep):
            return (
                f"segment {number} {segment[:20]!r} does not start with a segment id followed by the field "
                f"separator {sep!r} declared in MSH (wrong delimiters?)"
            )
    return ""


class _Message:
    """The segments of one message as field texts, read as the `hl7` package reads a message (hl7.parse, whose
    containers cost ~10 µs per component: most of ingest's time on an HL7 feed): SEG-n is split part n (MSH-1 is
    the field separator itself, MSH-2 the encoding characters), a field's repetitions, components and
    sub-components are split on demand, an absent part reads ''. tests/test_hl7_reading.py holds it to the
    package's reading."""

    __slots__ = ("esc", "problem", "segments", "separators")

    def __init__(self, text: str) -> None:
        text = text.strip()  # as hl7.parse does: the last segment loses trailing white space
        sep = text[3]
        # MSH-2 read as hl7.create_parse_plan reads it: component, repetition, escape, sub-component
        seps = text[3 : text.find(sep, 4)]
        component = seps[1] if len(seps) > 1 else "^"
        repetition = seps[2] if len(seps) > 2 else "~"
        self.esc = seps[3] if len(seps) > 3 else "\\"
        sub = seps[4] if len(seps) > 4 else "&"
        self.separators = "\r" + sep + repetition + component + sub
        # MSH-2 of 3 characters leaves the sub-component separator at its default '&', which MSH-2 may already use;
        # the hl7 package then fails (on an assertion) once a field holds the component separator: say why instead
        clash = len(set(self.separators)) < 5
        self.problem = ""
        self.segments: dict[str, list[str]] = {}
        for segment in text.split("\r"):
            name = segment[:3]
            if name == "MSH":
                end = segment.find(sep, 4)
                body = segment[end + 1 :]
                fields = ["MSH", sep, segment[4:end], *(body.split(sep) if body else ())]
            else:
                body = segment[4:]
                fields = segment.split(sep)
            if clash and component in body:
                self.problem = (f"MSH-2 encoding characters {seps[1:]!r} leave no sub-component separator of its "
                                "own (the default '&' is one of them): expected 4 distinct characters such as '^~\\&'")
            # the first segment of a name counts; a bare id (no fields) is no segment to the hl7 package
            if name not in self.segments and len(segment) > 3:
                self.segments[name] = fields

    def segment(self, name: str) -> list[str] | None:
        return self.segments.get(name)

    def components(self, segment: list[str] | None, field: int, repetition: int = 0, count: int = 1) -> list[str]:
        """The first `count` components of SEG-field[repetition] (0-based below the field), each its first
        sub-component; '' for each one absent."""
        if segment is None or field >= len(segment):
            return [""] * count
        _, _, rep, comp, sub = self.separators
        value = segment[field]
        if rep in value:
            reps = value.split(rep, repetition + 1)
            value = reps[repetition] if repetition < len(reps) else ""
        elif repetition:
            value = ""
        parts = value.split(comp, count)[:count] if comp in value else [value]
        if sub in value:
            parts = [p.split(sub, 1)[0] for p in parts]
        return parts + [""] * (count - len(parts)) if len(parts) < count else parts

    def part(self, segment: list[str] | None, field: int) -> str:
        """SEG-field's first component (its first sub-component), '' when absent."""
        return self.components(segment, field)[0]

    def repetitions(self, segment: list[str], field: int) -> int:
        value = segment[field] if field < len(segment) else ""
        return value.count(self.separators[2]) + 1 if value else 0

    def unescape(self, value: str) -> str:
        if not value or self.esc not in value:
            return value
        from hl7.util import unescape  # the package's reading of escape sequences (\\F\\, \\X0D\\, …)

        return unescape(self, value)


def _fields(message: _Message, msh: list[str] | None) -> dict[str, Any]:
    unescape, _part = message.unescape, message.part
    msg_type, trigger, structure = message.components(msh, 9, 0, 3)
    fields: dict[str, Any] = {
        "event.kind": "event",
        "event.module": "hl7",
        "observer.type": "hl7",
        "hl7.message_type": f"{msg_type}^{trigger}" if trigger else msg_type,
    }

    def put(name: str, value: str) -> None:
        if value:
            fields[name] = unescape(value)

    put("hl7.trigger_event", trigger)
    put("hl7.message_structure", structure)
    put("hl7.control_id", _part(msh, 10))
    put("hl7.processing_id", _part(msh, 11))
    put("hl7.version", _part(msh, 12))
    put("hl7.sending_application", _part(msh, 3))
    put("hl7.sending_facility", _part(msh, 4))
    put("hl7.receiving_application", _part(msh, 5))
    put("hl7.receiving_facility", _part(msh, 6))
    put("hl7.security", _part(msh, 8))
    fields["event.action"] = _ACTIONS.get(trigger, f"{msg_type}^{trigger}".lower() if trigger else msg_type.lower())
    pid = message.segment("PID")
    if pid is not None:
        identifiers = []
        for field in (3, 2, 4):  # PID-3 is the list; PID-2 and PID-4 are older external/alternate ids
            for rep in range(message.repetitions(pid, field)):
                cx = message.components(pid, field, rep, 5)  # CX: id^check digit^scheme^authority^type
                ident = unescape(cx[0])
                if ident:
                    identifiers.append(
                        {"id": ident, "type": unescape(cx[4]), "authority": unescape(cx[3]), "field": f"PID-{field}"}
                    )
        if identifiers:
            fields["patient.id"] = identifiers[0]["id"]
            fields["patient.identifiers"] = identifiers
            mrn = next((i["id"] for i in identifiers if i["type"] == "MR"), None)
            if mrn:
                fields["patient.mrn"] = mrn
        family, given, middle = (unescape(c) for c in message.components(pid, 5, 0, 3))
        name = ", ".join(p for p in (family, " ".join(p for p in (given, middle) if p)) if p)
        if name:
            fields["patient.name"] = name
    evn = message.segment("EVN")
    if evn is not None and (occurred := parse_dtm(_part(evn, 6))) is not None:
        fields["hl7.event_occurred"] = occurred.isoformat()
    pv1 = message.segment("PV1")
    if pv1 is not None:
        _visit(fields, message, pv1, put)
    summary = f"HL7 {fields['hl7.message_type']}"
    if "hl7.control_id" in fields:
        summary += f" {fields['hl7.control_id']}"
    if "hl7.sending_application" in fields:
        summary += f" from {fields['hl7.sending_application']}"
    if "hl7.receiving_application" in fields:
        summary += f" to {fields['hl7.receiving_application']}"
    fields["message"] = summary
    return fields


# PV1 clinicians (XCN: id^family^given^middle^suffix^prefix^degree): staff, not patient data
_CLINICIANS = (("attending_doctor", 7), ("referring_doctor", 8), ("admitting_doctor", 17))
# PV1-3 assigned patient location (PL) components
_LOCATION = (("ward", 0), ("room", 1), ("bed", 2), ("facility", 3), ("building", 6), ("floor", 7))


def _visit(fields: dict[str, Any], message: _Message, pv1: list[str], put: Any) -> None:
    """PV1 as fields, so later stages (privacy monitoring, asset ties) need not re-read the message:
    `hl7.patient_class` (PV1-2), `hl7.location` (PV1-3 as written) and `hl7.location.ward` (its point of
    care, the ward or unit) / `.room` / `.bed` / `.facility` / `.building` / `.floor`,
    `hl7.hospital_service` (PV1-10), and for the attending (PV1-7), referring (PV1-8) and admitting
    (PV1-17) clinician `hl7.<role>.id` and `hl7.<role>.name` ("FAMILY, GIVEN MIDDLE")."""
    unescape, _part = message.unescape, message.part
    put("hl7.patient_class", _part(pv1, 2))
    location = message.components(pv1, 3, 0, 8)
    parts = list(location)
    while parts and not parts[-1]:
        parts.pop()
    if parts:
        fields["hl7.location"] = "^".join(unescape(p) for p in parts)
    for name, index in _LOCATION:
        put(f"hl7.location.{name}", location[index])
    put("hl7.hospital_service", _part(pv1, 10))
    for name, index in (("admit_time", 44), ("discharge_time", 45)):
        if (when := parse_dtm(_part(pv1, index))) is not None:
            fields[f"hl7.{name}"] = when.isoformat()
    for role, field in _CLINICIANS:
        ident, family, given, middle = message.components(pv1, field, 0, 4)
        put(f"hl7.{role}.id", ident)
        more = [unescape(message.components(pv1, field, rep)[0]) for rep in range(1, message.repetitions(pv1, field))]
        if any(more):
            fields[f"hl7.{role}.ids"] = [fields.get(f"hl7.{role}.id", ""), *(m for m in more if m)]
        family, given, middle = unescape(family), unescape(given), unescape(middle)
        display = ", ".join(p for p in (family, " ".join(p for p in (given, middle) if p)) if p)
        if display:
            fields[f"hl7.{role}.name"] = display


def parse_dtm(text: str) -> datetime | None:
    """HL7 DTM to UTC; without an offset the time is taken as UTC (see the module docstring)."""
    match = _DTM.match(text.strip()) if text else None
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        tz = UTC
        if zone:
            minutes = int(zone[1:3]) * 60 + int(zone[3:5])
            tz = timezone(timedelta(minutes=minutes if zone[0] == "+" else -minutes))
        value = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")[:6]),
            tzinfo=tz,
        )
    except ValueError:
        return None
    return value.astimezone(UTC)


FORMAT = Hl7Format()
