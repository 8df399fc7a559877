"""DICOM: Part 10 file metadata (pydicom, pixel data never read) and association/audit events as JSON lines.

Part 10 files (128-byte preamble, then `DICM`) give one event; its `position` is 1 (the record
ordinal). `original` is the metadata as a flat dict keyword → text: the file meta group and every
top-level element except sequences and values longer than 1 KiB (bulk data). Anything that is not
Part 10 (raw datasets without a preamble, gzip-compressed files, DICOM JSON …) is rejected with what
was found. Fields: `dicom.sop_class_uid` / `dicom.sop_class_name`, `dicom.modality`,
`dicom.study_instance_uid`, `dicom.series_instance_uid`, `dicom.sop_instance_uid`,
`dicom.accession_number`, `dicom.station_name` (also `host.name`), `dicom.institution_name`,
`dicom.source_ae_title` (file meta SourceApplicationEntityTitle), `dicom.calling_ae_title` /
`dicom.called_ae_title` (file meta Sending/Receiving AE title), `dicom.transfer_syntax_uid`,
`device.manufacturer`, `device.model.name`, `device.serial_number`, `device.software_versions`;
patient data only in `patient.id`, `patient.name`, `patient.birth_date`.
Time: StudyDate/StudyTime, else ContentDate/ContentTime, SeriesDate/SeriesTime, AcquisitionDate/
AcquisitionTime, InstanceCreationDate/Time; with TimezoneOffsetFromUTC when present, else taken as
UTC; without any date, the file's modification time.

Association / audit events, one JSON object per line (the shape a DICOM proxy or PACS audit hook
writes; all keys but `ts` and `command` optional):

    {"ts": "2026-03-01T10:15:00Z" | 1772360100.0, "calling_ae": "MODALITY1", "called_ae": "PACS",
     "src_ip": "10.1.2.3", "src_port": 50412, "dst_ip": "10.1.9.9", "dst_port": 104,
     "command": "C-FIND" | "C-MOVE" | "C-STORE" | "C-GET" | "C-ECHO" | "A-ASSOCIATE" | "A-RELEASE" | "A-ABORT",
     "sop_class": "1.2.840.10008.5.1.4.1.2.2.1", "patient_id": "12345", "study_uid": "1.2.3…",
     "move_destination": "WS7", "user": "jdoe", "status": 0 | "0x0000"}

→ `dicom.calling_ae_title`, `dicom.called_ae_title`, `dicom.command`, `event.action` (the command,
lower case), `source.ip`/`source.port`, `destination.ip`/`destination.port`, `dicom.sop_class_uid`/
`_name`, `dicom.study_instance_uid`, `dicom.move_destination`, `user.name`, `dicom.status` and
`event.outcome` (0x0000 and warnings 0x0001/0xBxxx success, pending 0xFF00/0xFF01 unknown, else
failure), `patient.id`. `original` is the object as written; `position` the byte offset after the line.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, BinaryIO, ClassVar

from healthswarm.ingest.formats.json_records import JsonItem, iter_json_from
from healthswarm.ingest.formats.timestamps import from_epoch, parse_iso
from healthswarm.model import Event, Reject
from healthswarm.model.words import counted

_PREAMBLE = 128
_MAGIC = b"DICM"
_COMMANDS = {"C-ECHO", "C-FIND", "C-GET", "C-MOVE", "C-STORE", "A-ASSOCIATE", "A-RELEASE", "A-ABORT"}
_AUDIT_KEYS = re.compile(rb'"(calling_ae|called_ae)"\s*:')
_COMMAND_KEY = re.compile(rb'"command"\s*:\s*"[CA]-[A-Z]+"')
_MAX_VALUE = 1024
_DATE_PAIRS = (
    ("StudyDate", "StudyTime"),
    ("ContentDate", "ContentTime"),
    ("SeriesDate", "SeriesTime"),
    ("AcquisitionDate", "AcquisitionTime"),
    ("InstanceCreationDate", "InstanceCreationTime"),
)


class DicomFormat:
    name: ClassVar[str] = "dicom"
    description: ClassVar[str] = "DICOM Part 10 file metadata and DICOM association events (JSON lines)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        if head[_PREAMBLE : _PREAMBLE + 4] == _MAGIC:
            return 1.0
        if head.lstrip()[:1] == b"{" and _AUDIT_KEYS.search(head) and _COMMAND_KEY.search(head):
            return 0.9
        return 0.0

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        if not stream.seekable() and not hasattr(stream, "peek"):
            stream = io.BufferedReader(_Raw(stream))  # type: ignore[assignment]  # gives peek() to a pipe
        try:
            head = _peek(stream, _PREAMBLE + 4)
        except OSError as exc:
            yield self._reject(source, 1, 1, f"unreadable stream: {exc}", b"")
            return
        if head[_PREAMBLE:] == _MAGIC:
            if start < 1:
                yield self._part10(stream, source)
        elif head.lstrip()[:1] in (b"{", b"[") or _json_lines_ahead(stream):
            # association events, one JSON object a line (a bad first line is one reject, not the file)
            for item in iter_json_from(stream, start):
                yield self._audit(item, source)
        elif start < 1:
            hint = " (gzip-compressed: decompress it first)" if head.startswith(b"\x1f\x8b") else ""
            yield self._reject(
                source, 1, 1,
                f"not a DICOM Part 10 file{hint}: expected a 128-byte preamble and 'DICM' at offset 128, "
                f"found {head[_PREAMBLE:]!r}; nor a JSON association event",
                head,
            )  # fmt: skip

    def _reject(self, source: str, position: int, record: int, reason: str, raw: bytes) -> Reject:
        return Reject(source=source, position=position, reason=reason, raw=raw, format=self.name, record=record)

    # -- Part 10 files --------------------------------------------------------------------------
    def _part10(self, stream: BinaryIO, source: str) -> Event | Reject:
        import pydicom  # imported on use: pydicom is slow to import and only DICOM needs it
        from pydicom.errors import InvalidDicomError

        readable = _random_access(stream)
        head = _peek(readable, _PREAMBLE + 4)
        try:
            with warnings.catch_warnings():
                # pydicom warns about tolerated deviations (implicit VR found, odd IS values): not failures
                warnings.simplefilter("ignore")
                dataset = pydicom.dcmread(readable, stop_before_pixels=True)  # type: ignore[arg-type]
                fields, original = part10_fields(dataset)
        except InvalidDicomError as exc:
            return self._reject(source, 1, 1, f"invalid DICOM file: {exc}", head)
        except Exception as exc:  # pydicom raises many types for broken files (struct, ValueError, EOFError…)
            return self._reject(source, 1, 1, f"DICOM file unreadable: {type(exc).__name__}: {exc}", head)
        problem = _incomplete(readable, dataset)
        if problem:
            return self._reject(source, 1, 1, problem, head)
        timestamp = _dataset_time(dataset) or _file_time(stream)
        if timestamp is None:
            return self._reject(
                source, 1, 1, "DICOM file without StudyDate/ContentDate/SeriesDate and without a file time", head
            )
        return Event(timestamp=timestamp, fields=fields, original=original, source=source, record=1, position=1)

    # -- association events ---------------------------------------------------------------------
    def _audit(self, item: JsonItem, source: str) -> Event | Reject:
        if item.error:
            return self._reject(source, item.position, item.line, item.error, item.raw)
        value = item.value
        if not isinstance(value, dict) or "command" not in value:
            return self._reject(
                source, item.position, item.line,
                "not a DICOM association event: expected a JSON object with 'ts' and 'command'", item.raw,
            )  # fmt: skip
        command = str(value.get("command", "")).upper()
        if command not in _COMMANDS:
            return self._reject(
                source, item.position, item.line,
                f"DICOM command {value.get('command')!r}: expected one of {', '.join(sorted(_COMMANDS))}", item.raw,
            )  # fmt: skip
        ts = value.get("ts")
        if isinstance(ts, (int, float)) and not isinstance(ts, bool):
            timestamp = from_epoch(ts)
        else:
            timestamp = parse_iso(ts) if isinstance(ts, str) else None
        if timestamp is None:
            return self._reject(
                source, item.position, item.line,
                f"DICOM event time 'ts' {ts!r} invalid: expected ISO 8601 or epoch seconds", item.raw,
            )  # fmt: skip
        return Event(
            timestamp=timestamp, fields=audit_fields(value, command), original=value, source=source,
            record=item.line, position=item.position,
        )  # fmt: skip


def audit_fields(value: dict[str, Any], command: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event.kind": "event",
        "event.module": "dicom",
        "observer.type": "dicom",
        "dicom.command": command,
        "event.action": command.lower(),
        "event.category": ["network"],
    }

    def put(name: str, raw: Any) -> None:
        if raw is not None and raw != "":
            fields[name] = str(raw).strip() if isinstance(raw, str) else raw

    put("dicom.calling_ae_title", value.get("calling_ae"))
    put("dicom.called_ae_title", value.get("called_ae"))
    put("dicom.move_destination", value.get("move_destination"))
    put("dicom.study_instance_uid", value.get("study_uid"))
    put("user.name", value.get("user"))
    put("patient.id", value.get("patient_id"))
    for side, ip_key, port_key in (("source", "src_ip", "src_port"), ("destination", "dst_ip", "dst_port")):
        try:
            fields[f"{side}.ip"] = str(ipaddress.ip_address(str(value.get(ip_key))))
        except ValueError:
            put(f"{side}.address", value.get(ip_key))
        port = value.get(port_key)
        if isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535:
            fields[f"{side}.port"] = port
    if sop := value.get("sop_class"):
        fields["dicom.sop_class_uid"] = str(sop)
        if name := _uid_name(str(sop)):
            fields["dicom.sop_class_name"] = name
    status = _status(value.get("status"))
    if status is not None:
        fields["dicom.status"] = status
        if status == 0 or status == 1 or 0xB000 <= status <= 0xBFFF:
            fields["event.outcome"] = "success"
        elif status in (0xFF00, 0xFF01):
            fields["event.outcome"] = "unknown"
        else:
            fields["event.outcome"] = "failure"
    summary = f"DICOM {command}"
    if "dicom.calling_ae_title" in fields:
        summary += f" {fields['dicom.calling_ae_title']}"
    if "dicom.called_ae_title" in fields:
        summary += f" -> {fields['dicom.called_ae_title']}"
    fields["message"] = summary
    return fields


def _status(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            return None
    return None


def _uid_name(uid: str) -> str | None:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else None


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def part10_fields(dataset: Any) -> tuple[dict[str, Any], dict[str, str]]:
    meta = dataset.file_meta
    fields: dict[str, Any] = {
        "event.kind": "event",
        "event.module": "dicom",
        "observer.type": "dicom",
        "event.category": ["file"],
        "event.action": "dicom-instance",
    }

    def put(name: str, value: Any) -> None:
        text = _text(value)
        if text:
            fields[name] = text

    sop_class = dataset.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID")
    put("dicom.sop_class_uid", sop_class)
    if sop_class and (name := _uid_name(str(sop_class))):
        fields["dicom.sop_class_name"] = name
    put("dicom.sop_instance_uid", dataset.get("SOPInstanceUID") or meta.get("MediaStorageSOPInstanceUID"))
    put("dicom.modality", dataset.get("Modality"))
    put("dicom.study_instance_uid", dataset.get("StudyInstanceUID"))
    put("dicom.series_instance_uid", dataset.get("SeriesInstanceUID"))
    put("dicom.accession_number", dataset.get("AccessionNumber"))
    put("dicom.station_name", dataset.get("StationName"))
    put("host.name", dataset.get("StationName"))
    put("dicom.institution_name", dataset.get("InstitutionName"))
    put("dicom.transfer_syntax_uid", meta.get("TransferSyntaxUID"))
    put("dicom.implementation_class_uid", meta.get("ImplementationClassUID"))
    put("dicom.implementation_version_name", meta.get("ImplementationVersionName"))
    put("dicom.source_ae_title", meta.get("SourceApplicationEntityTitle"))
    put("dicom.calling_ae_title", meta.get("SendingApplicationEntityTitle"))
    put("dicom.called_ae_title", meta.get("ReceivingApplicationEntityTitle"))
    put("device.manufacturer", dataset.get("Manufacturer"))
    put("device.model.name", dataset.get("ManufacturerModelName"))
    put("device.serial_number", dataset.get("DeviceSerialNumber"))
    versions = dataset.get("SoftwareVersions")
    if versions is not None and _text(versions):
        fields["device.software_versions"] = (
            [str(v) for v in versions] if not isinstance(versions, (str, bytes)) and hasattr(versions, "__iter__")
            else [_text(versions)]
        )  # fmt: skip
    put("patient.id", dataset.get("PatientID"))
    put("patient.name", dataset.get("PatientName"))
    put("patient.birth_date", dataset.get("PatientBirthDate"))
    summary = f"DICOM {fields.get('dicom.sop_class_name') or fields.get('dicom.sop_class_uid', 'object')}"
    if "dicom.modality" in fields:
        summary += f" ({fields['dicom.modality']})"
    fields["message"] = summary

    original: dict[str, str] = {}
    for group in (meta, dataset):
        for element in group:
            if element.VR == "SQ" or element.tag.is_private:
                continue
            keyword = element.keyword or str(element.tag)
            try:
                text = str(element.value)
            except Exception:  # a value pydicom cannot render (broken encoding): keep its bytes' repr
                text = repr(element.value)
            if len(text) <= _MAX_VALUE:
                original[keyword] = text
    return fields, original


_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")


def _dataset_time(dataset: Any) -> datetime | None:
    tz = UTC
    offset = _text(dataset.get("TimezoneOffsetFromUTC"))
    if re.match(r"^[+-]\d{4}$", offset):
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        tz = timezone(timedelta(minutes=minutes if offset[0] == "+" else -minutes))
    for date_key, time_key in _DATE_PAIRS:
        date = _DA.match(_text(dataset.get(date_key)).replace(".", "").replace("-", ""))
        if not date:
            continue
        time = _TM.match(_text(dataset.get(time_key)).replace(":", ""))
        hour, minute, second, fraction = time.groups() if time else ("0", "0", "0", None)
        try:
            value = datetime(
                int(date[1]), int(date[2]), int(date[3]), int(hour), int(minute or 0), int(second or 0),
                int((fraction or "0").ljust(6, "0")), tzinfo=tz,
            )  # fmt: skip
        except ValueError:
            continue
        return value.astimezone(UTC)
    return None


# VRs whose explicit-VR header has 2 reserved bytes and a 4-byte length
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_IMPLICIT_LITTLE, _EXPLICIT_BIG, _DEFLATED = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"
_UNDEFINED = 0xFFFFFFFF


def _incomplete(stream: BinaryIO, dataset: Any) -> str:
    """Why a Part 10 file that pydicom read is not whole, or ''.

    pydicom reads leniently: random bytes after a valid preamble give an empty data set, and with
    pixel data left unread a file cut anywhere after its metadata reads fine. So: the file meta must
    name a transfer syntax, a data set must follow, and every element's declared length (pixel data,
    sequences, encapsulated fragments) must fit in the file — walked header by header, values skipped.
    """
    meta = getattr(dataset, "file_meta", None)
    syntax = _text(meta.get("TransferSyntaxUID")) if meta is not None else ""
    if not syntax:
        return ("DICOM file meta information incomplete: no (0002,0010) Transfer Syntax UID after the 'DICM' "
                "prefix (corrupt or not DICOM)")
    if len(dataset) == 0:
        return "DICOM file without a data set after its file meta information (corrupt or cut short)"
    if syntax == _DEFLATED:
        return ""  # a deflated data set is one zlib stream: pydicom inflated it, nothing left to walk
    try:
        size = stream.seek(0, io.SEEK_END)
        problem = _walk(stream, size, syntax)
        if problem and syntax != _IMPLICIT_LITTLE and not _walk(stream, size, _IMPLICIT_LITTLE):
            return ""  # written in implicit VR whatever its meta says (pydicom reads such files too)
        return problem
    except (OSError, ValueError) as exc:
        return f"DICOM file unreadable: {exc}"


def _walk(stream: BinaryIO, size: int, syntax: str) -> str:
    import struct

    position = _PREAMBLE + 4
    open_containers = 0  # sequences and items of undefined length not yet closed by their delimiter
    while position < size:
        stream.seek(position)
        header = stream.read(12)
        if len(header) < 8:
            return f"DICOM file truncated: it ends {len(header)} bytes into an element header at offset {position:,}"
        meta = header[:2] == b"\x02\x00"  # group 0002 is explicit VR little endian whatever the syntax
        order = ">" if syntax == _EXPLICIT_BIG and not meta else "<"
        group, element = struct.unpack(order + "HH", header[:4])
        vr = header[4:6]
        implicit = syntax == _IMPLICIT_LITTLE and not meta
        if not implicit and not (vr.isalpha() and vr.isupper()):
            implicit = True  # an implicit-VR element inside an explicit data set (as pydicom tolerates)
        if group == 0xFFFE or implicit:
            (length,) = struct.unpack(order + "I", header[4:8])
            skip = 8
        elif vr in _LONG_VRS:
            if len(header) < 12:
                return f"DICOM file truncated: it ends inside the header of element ({group:04X},{element:04X})"
            (length,) = struct.unpack(order + "I", header[8:12])
            skip = 12
        else:
            (length,) = struct.unpack(order + "H", header[6:8])
            skip = 8
        position += skip
        if group == 0xFFFE and element in (0xE00D, 0xE0DD):
            open_containers = max(0, open_containers - 1)
            continue
        if length == _UNDEFINED:
            open_containers += 1
            continue  # a sequence, item or encapsulated pixel data: what it holds follows, walked on
        position += length
        if position > size:
            return (f"DICOM file truncated: element ({group:04X},{element:04X}) declares {length:,} bytes but the "
                    f"file ends {position - size:,} bytes short (cut at {size:,} bytes)")
    if open_containers:
        return (f"DICOM file truncated: it ends inside {counted(open_containers, 'sequence')} or encapsulated pixel "
                "data not closed by their delimiter")
    return ""


def _file_time(stream: BinaryIO) -> datetime | None:
    try:
        return datetime.fromtimestamp(os.fstat(stream.fileno()).st_mtime, UTC)
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return None


def _random_access(stream: BinaryIO) -> BinaryIO:
    """`stream` when it seeks anywhere (its end included), else its bytes in memory (a pipe, or a member
    of an archive, which seeks only forward by decompressing)."""
    where = None
    try:
        where = stream.tell()
        stream.seek(0, io.SEEK_END)
        stream.seek(where)
        return stream
    except (AttributeError, OSError, ValueError):
        if where is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.seek(where)
    return io.BytesIO(stream.read())


def _json_lines_ahead(stream: BinaryIO) -> bool:
    """Whether a line of the first 64 KiB starts a JSON object: a file of association events whose
    first line is broken is still that file."""
    head = _peek(stream, 65536)
    return b"\n{" in head and head[_PREAMBLE : _PREAMBLE + 4] != _MAGIC


class _Raw(io.RawIOBase):
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _peek(stream: BinaryIO, size: int) -> bytes:
    if stream.seekable():
        where = stream.tell()
        data = stream.read(size)
        stream.seek(where)
        return data
    peek = getattr(stream, "peek", None)
    return peek(size)[:size] if peek else b""


FORMAT = DicomFormat()
