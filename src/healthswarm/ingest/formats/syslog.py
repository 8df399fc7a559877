"""Syslog lines: RFC 5424, RFC 3164 (BSD), and the same without `<PRI>` as rsyslog writes files.

Accepted line shapes:
- RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]` (`-` = nil);
- RFC 3164: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG` (the hostname may be missing);
- file lines without PRI: `Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG` (rsyslog's traditional format) or
  `RFC3339-TIMESTAMP HOSTNAME TAG[PID]: MSG` (RSYSLOG_FileFormat).

Year of RFC 3164 timestamps, which have none: taken from a reference date R, the modification time
of the file being read (so the same file always gives the same result), or the time parsing starts
when the stream is not a file. A line whose month/day falls after R (by more than a day, to allow
for zones) was written the year before R; otherwise it is in R's year. Those timestamps carry no
zone either; they are taken as UTC.

Fields: `log.syslog.priority`, `log.syslog.facility.code`/`.name`, `log.syslog.severity.code`/`.name`,
`event.severity` (the syslog severity code), `log.syslog.version`, `log.syslog.hostname` and
`host.hostname`, `log.syslog.appname` and `process.name`, `log.syslog.procid` (and `process.pid`
when numeric), `log.syslog.msgid`, `log.syslog.structured_data` ({SD-ID: {name: value}}), `message`.
`original` is the raw line (decoded as UTF-8; bytes that are not UTF-8 are kept as `\\xNN` escapes
and the event tagged `invalid-utf8`). A line that matches none of the shapes is rejected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, ClassVar

from healthswarm.ingest.formats.lines import iter_lines, max_line_bytes
from healthswarm.ingest.formats.timestamps import parse_iso
from healthswarm.model import Event, Reject

_MONTHS = {
    m: i
    for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)
}
_PRI = re.compile(r"^<(\d{1,3})>")
_RFC5424 = re.compile(r"^(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\](?:\[.*?\])*)(?: (.*))?$", re.S)
_BSD_TIME = re.compile(r"^([A-Z][a-z]{2}) ([ \d]\d) (?:(\d{4}) )?(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))? ")
_ISO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) ")
_TAG = re.compile(r"^([^\s\[\]:]{1,128})(?:\[([^\]]{0,64})\])?: ?")
_SD_ELEMENT = re.compile(r'\[([^\s\]=]+)((?:\s+[^\s=\]]+="(?:[^"\\]|\\.)*")*)\s*\]')
_SD_PARAM = re.compile(r'([^\s=\]]+)="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE = re.compile(r"\\([\"\\\]])")
_FACILITIES = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
]
_SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")
_AUDIT = re.compile(rb"type=[A-Z_]+ msg=audit\(")


def _line_score(line: str) -> bool:
    text = _PRI.sub("", line, count=1)
    return bool(_BSD_TIME.match(text) or _ISO_TIME.match(text) or (line.startswith("<") and _RFC5424.match(text)))


class SyslogFormat:
    name: ClassVar[str] = "syslog"
    description: ClassVar[str] = "Syslog (RFC 5424, RFC 3164, rsyslog files)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        lines = [line for line in head.split(b"\n")[:21] if line.strip()]
        if len(lines) > 1 and not head.endswith(b"\n"):
            lines = lines[:-1]  # the last line of the sniffed head may be cut
        if not lines:
            return 0.0
        matched = sum(_line_score(line.decode("utf-8", "replace")) for line in lines)
        if matched == 0 or matched / len(lines) < 0.8:
            return 0.0
        # audit records relayed through syslog are better read by the auditd format
        return 0.6 if _AUDIT.search(head) else 0.9

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        reference = _reference_time(stream)
        for line, position, number in iter_lines(stream, start):
            if line is None:
                yield self._reject(source, position, number, f"line longer than {max_line_bytes()} bytes", b"")
                continue
            if not line.strip():
                continue
            yield self._line(line, source, position, number, reference)

    def _reject(self, source: str, position: int, record: int, reason: str, raw: bytes) -> Reject:
        return Reject(source=source, position=position, reason=reason, raw=raw, format=self.name, record=record)

    def _line(self, raw: bytes, source: str, position: int, number: int, reference: datetime) -> Event | Reject:
        tags: list[str] = []
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "backslashreplace")
            tags.append("invalid-utf8")
        parsed = parse_line(text, reference)
        if isinstance(parsed, str):
            return self._reject(source, position, number, parsed, raw)
        timestamp, fields = parsed
        if tags:
            fields["tags"] = tags
        return Event(timestamp=timestamp, fields=fields, original=text, source=source, record=number, position=position)


def _reference_time(stream: BinaryIO) -> datetime:
    try:
        return datetime.fromtimestamp(os.fstat(stream.fileno()).st_mtime, UTC)
    except (OSError, AttributeError, ValueError):
        return datetime.now(UTC)
    except Exception:  # io.UnsupportedOperation from BytesIO and the like
        return datetime.now(UTC)


def _bsd_year(month: int, day: int, reference: datetime) -> int:
    try:
        candidate = datetime(reference.year, month, day, tzinfo=UTC)
    except ValueError:  # 29 Feb outside a leap year: the previous leap year is the only choice
        return reference.year - 1
    return reference.year - 1 if candidate > reference + timedelta(days=1) else reference.year


def _structured_data(text: str) -> dict[str, dict[str, str]] | None:
    if text == "-":
        return {}
    elements: dict[str, dict[str, str]] = {}
    end = 0
    for match in _SD_ELEMENT.finditer(text):
        if match.start() != end:
            return None
        end = match.end()
        params = {name: _SD_UNESCAPE.sub(r"\1", value) for name, value in _SD_PARAM.findall(match.group(2))}
        elements[match.group(1)] = params
    return elements if end == len(text) else None


def _split_sd(rest: str) -> tuple[str, str] | None:
    """STRUCTURED-DATA and the message after it (SD values may hold spaces and escaped brackets)."""
    if rest.startswith("-"):
        return "-", rest[2:] if rest[1:2] == " " else rest[1:]
    index, depth, in_quote, escaped = 0, 0, False, False
    while index < len(rest):
        char = rest[index]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            in_quote = not in_quote
        elif not in_quote and char == "[":
            depth += 1
        elif not in_quote and char == "]":
            depth -= 1
            if depth == 0 and rest[index + 1 : index + 2] != "[":
                return rest[: index + 1], rest[index + 2 :]
        index += 1
    return None


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def parse_line(text: str, reference: datetime) -> tuple[datetime, dict[str, Any]] | str:
    """(timestamp, fields) of one syslog line, or the reason it is not one."""
    fields: dict[str, Any] = {"event.kind": "event", "event.module": "syslog", "observer.type": "syslog"}
    body = text
    pri = _PRI.match(text)
    if pri:
        value = int(pri.group(1))
        if value > 191:
            return f"PRI <{value}> out of range: expected 0-191 (facility * 8 + severity)"
        facility, severity = divmod(value, 8)
        fields["log.syslog.priority"] = value
        fields["log.syslog.facility.code"] = facility
        fields["log.syslog.facility.name"] = _FACILITIES[facility]
        fields["log.syslog.severity.code"] = severity
        fields["log.syslog.severity.name"] = _SEVERITIES[severity]
        fields["event.severity"] = severity
        fields["log.level"] = _SEVERITIES[severity]
        body = text[pri.end() :]
        if body[:2] == "1 ":
            return _rfc5424(body, fields)
    return _rfc3164(body, fields, reference)


def _rfc5424(body: str, fields: dict[str, Any]) -> tuple[datetime, dict[str, Any]] | str:
    head = body.split(" ", 6)
    if len(head) < 7:
        return "RFC 5424 header incomplete: expected VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA"
    version, stamp, hostname, appname, procid, msgid, rest = head
    timestamp = parse_iso(stamp) if stamp != "-" else None
    if timestamp is None:
        return f"RFC 5424 TIMESTAMP {stamp!r} invalid: expected RFC 3339 such as 2026-03-01T10:15:00.003Z"
    split = _split_sd(rest)
    if split is None:
        return f"RFC 5424 STRUCTURED-DATA malformed: expected '-' or [SD-ID name=\"value\" …], found {rest[:40]!r}"
    sd_text, message = split
    structured = _structured_data(sd_text)
    if structured is None:
        return f"RFC 5424 STRUCTURED-DATA malformed: {sd_text[:60]!r}"
    fields["log.syslog.version"] = int(version)
    if hostname := _nil(hostname):
        fields["log.syslog.hostname"] = fields["host.hostname"] = hostname
    if appname := _nil(appname):
        fields["log.syslog.appname"] = fields["process.name"] = appname
    if procid := _nil(procid):
        fields["log.syslog.procid"] = procid
        if procid.isdigit():
            fields["process.pid"] = int(procid)
    if msgid := _nil(msgid):
        fields["log.syslog.msgid"] = msgid
    if structured:
        fields["log.syslog.structured_data"] = structured
    fields["message"] = message.removeprefix("\ufeff")
    return timestamp, fields


def _rfc3164(body: str, fields: dict[str, Any], reference: datetime) -> tuple[datetime, dict[str, Any]] | str:
    bsd = _BSD_TIME.match(body)
    if bsd:
        month_name, day, year, hour, minute, second, fraction = bsd.groups()
        month = _MONTHS.get(month_name)
        if month is None:
            return f"month {month_name!r} unknown: expected Jan … Dec"
        day_number = int(day)
        try:
            timestamp = datetime(
                int(year) if year else _bsd_year(month, day_number, reference), month, day_number,
                int(hour), int(minute), int(second), int((fraction or "0").ljust(6, "0")), tzinfo=UTC,
            )  # fmt: skip
        except ValueError as exc:
            return f"timestamp {bsd.group(0).strip()!r} invalid: {exc}"
        rest = body[bsd.end() :]
    else:
        iso = _ISO_TIME.match(body)
        parsed = parse_iso(iso.group(1)) if iso else None
        if iso is None or parsed is None:
            return (
                "not a syslog line: expected <PRI>1 TIMESTAMP … (RFC 5424), [<PRI>]Mmm dd hh:mm:ss HOST TAG: MSG "
                f"(RFC 3164) or an RFC 3339 timestamp first, found {body[:40]!r}"
            )
        timestamp = parsed
        rest = body[iso.end() :]
    # HOSTNAME is absent when the first word is already the tag ("su[12]:" / "kernel:")
    first, _, after = rest.partition(" ")
    if first and not _TAG.fullmatch(first) and not first.endswith(":"):
        fields["log.syslog.hostname"] = fields["host.hostname"] = first
        rest = after
    tag = _TAG.match(rest)
    if tag:
        fields["log.syslog.appname"] = fields["process.name"] = tag.group(1)
        if tag.group(2):
            fields["log.syslog.procid"] = tag.group(2)
            if tag.group(2).isdigit():
                fields["process.pid"] = int(tag.group(2))
        rest = rest[tag.end() :]
    fields["message"] = rest
    return timestamp, fields


FORMAT = SyslogFormat()
