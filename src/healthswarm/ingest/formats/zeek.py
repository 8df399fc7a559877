"""Zeek logs, both as written by the ASCII writer (TSV with `#` headers) and as JSON lines.

TSV: a header block (`#separator \\x09`, `#set_separator`, `#empty_field`, `#unset_field`, `#path`,
`#open`, `#fields`, `#types`) precedes the rows and `#close` ends it; a file may hold several blocks
(concatenated or rotated logs), each applying to the rows after it. Header and `#close` lines are
not records: they yield nothing (neither event nor reject). Values are converted by their `#types`
(time, interval, count, port, bool, set/vector/table split on the set separator, `\\xNN` escapes
decoded); the unset marker means "no value", the empty marker an empty string or container.
`original` is the row as field → text (escapes decoded, "" for the empty marker), None where the
field was unset.

JSON: one object per line, `original` is the object. The log is named by `_path`, else by the file
name (`conn.log`, `conn.2024-01-01-00-00-00.log`), else inferred from the fields it carries.

Both map to ECS: `event.dataset` "zeek.<log>", `zeek.session_id` (uid), `source.*`/`destination.*`
(id.orig_h/p, id.resp_h/p), `network.transport`, `network.protocol`, `network.community_id`, and per
log the dns/http/tls/file/email/x509/rule fields. Resuming inside a TSV file re-reads the header
lines before `start` (scanning only that prefix, stopping at `start`), so the columns are known.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, ClassVar

import orjson

from healthswarm.ingest.formats.lines import iter_lines
from healthswarm.ingest.formats.rows import (
    BOM,
    count_lines_before,
    head_objects,
    json_failure,
    not_object,
    prefix_memo,
    too_long,
    utf8_reason,
)
from healthswarm.ingest.formats.timestamps import from_epoch, parse_iso
from healthswarm.model import Event, Reject

NAME = "zeek"

# Logs such as loaded_scripts carry no time at all. They get the Unix epoch: deterministic (the same
# record read twice is the same event) and plainly not a real time, unlike the ingest time would be.
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_UNTIMED_LOGS = frozenset(("loaded_scripts",))  # Zeek logs whose records carry no 'ts'


KNOWN_LOGS = frozenset((
    "conn", "dns", "http", "ssl", "x509", "files", "notice", "notice_alarm", "weird", "weird_stats", "smtp",
    "ftp", "dhcp", "dce_rpc", "kerberos", "ntlm", "ntp", "rdp", "ssh", "sip", "snmp", "socks", "software",
    "tunnel", "dpd", "analyzer", "known_hosts", "known_services", "known_certs", "capture_loss", "stats",
    "loaded_scripts", "packet_filter", "reporter", "app_stats", "irc", "mysql", "radius", "modbus", "dnp3",
    "syslog", "pe", "ocsp", "intel", "signatures", "traceroute", "netcontrol", "conn_long", "smb_files",
    "smb_mapping", "smb_cmd", "dns_unmatched",
))

_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def _unescape(text: str) -> str:
    """Zeek writes non-printable bytes (and separators inside values) as \\xNN."""
    if "\\x" not in text:
        return text
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode())
    return raw.decode("utf-8", "backslashreplace")


def _bool(text: str) -> bool:
    if text == "T":
        return True
    if text == "F":
        return False
    raise ValueError(f"{text!r} is not T or F")


_SCALARS: dict[str, Callable[[str], Any]] = {
    "time": float, "interval": float, "double": float, "count": int, "int": int, "port": int, "bool": _bool,
}


class _Header:
    """The state of the current header block."""

    __slots__ = ("empty", "fields", "path", "separator", "set_separator", "types", "unset")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.separator = "\t"
        self.set_separator = ","
        self.empty = "(empty)"
        self.unset = "-"
        self.path = ""
        self.fields: list[str] | None = None
        self.types: list[str] | None = None

    def line(self, text: str) -> None:
        """Apply one `#` line; unknown `#` lines are comments."""
        if text.startswith("#separator"):
            # the separator line itself is split on whitespace: it defines the separator
            self.reset()  # a new block starts afresh
            value = text[len("#separator") :].strip(" \t")
            self.separator = _unescape(value) or "\t"
            return
        key, _, value = text.partition(self.separator)
        if key == "#fields":
            self.fields = value.split(self.separator)
            self.types = None
        elif key == "#types":
            self.types = value.split(self.separator)
        elif key == "#set_separator":
            self.set_separator = _unescape(value)
        elif key == "#empty_field":
            self.empty = _unescape(value)
        elif key == "#unset_field":
            self.unset = _unescape(value)
        elif key == "#path":
            self.path = _unescape(value)

    def converters(self) -> list[Callable[[str], Any]]:
        assert self.fields is not None
        types = self.types if self.types and len(self.types) == len(self.fields) else ["string"] * len(self.fields)
        return [self._converter(t) for t in types]

    def _converter(self, zeek_type: str) -> Callable[[str], Any]:
        if "[" in zeek_type:  # set[addr], vector[string], table[enum]
            inner = _SCALARS.get(zeek_type[zeek_type.index("[") + 1 : -1], _unescape)
            sep, empty = self.set_separator, self.empty

            def container(text: str) -> list[Any]:
                return [] if text == empty else [inner(_unescape(item)) for item in text.split(sep)]

            return container
        scalar = _SCALARS.get(zeek_type)
        if scalar is None:
            return _unescape
        return scalar


def _guess_log(o: dict[str, Any]) -> str:
    """The log a JSON record without `_path` comes from, by the fields only that log has."""
    if "conn_state" in o or "orig_ip_bytes" in o:
        return "conn"
    if "qtype_name" in o or ("query" in o and "trans_id" in o):
        return "dns"
    if "status_code" in o or ("trans_depth" in o and "method" in o):
        return "http"
    if "certificate.serial" in o or "certificate.subject" in o:
        return "x509"
    if "request_type" in o and "client" in o:
        return "kerberos"  # before ssl: kerberos records name a cipher too
    if "cipher" in o or "server_name" in o or "established" in o:
        return "ssl"
    if "fuid" in o and ("seen_bytes" in o or "mime_type" in o or "analyzers" in o):
        return "files"
    if "note" in o:
        return "notice"
    if "addl" in o or ("name" in o and "notice" in o):
        return "weird"
    if "helo" in o or "mailfrom" in o:
        return "smtp"
    if "reply_code" in o and "command" in o:
        return "ftp"
    if "msg_types" in o or "lease_time" in o or "assigned_addr" in o:
        return "dhcp"
    if "endpoint" in o and "operation" in o:
        return "dce_rpc"
    if "share_type" in o:
        return "smb_mapping"
    if isinstance(o.get("action"), str) and o["action"].startswith("SMB::"):
        return "smb_files"
    if "stratum" in o or "ref_id" in o:
        return "ntp"
    if "auth_success" in o or "auth_attempts" in o:
        return "ssh"
    if "percent_lost" in o:
        return "capture_loss"
    if "pkts_proc" in o:
        return "stats"
    if "filter" in o and "init" in o:
        return "packet_filter"
    if set(o) == {"name"}:
        return "loaded_scripts"
    return "unknown"


def log_from_filename(name: str) -> str:
    stem = os.path.basename(name.rsplit("!", 1)[-1]).split(".", 1)[0]  # `archive!member` names the member
    return stem if stem in KNOWN_LOGS else ""


# --- normalisation ---------------------------------------------------------------------------------

_NETWORK = ["network"]
_PROTOCOL = ["protocol"]
_INFO = ["info"]
_TLS_VERSIONS = {"TLSv10": "1.0", "TLSv11": "1.1", "TLSv12": "1.2", "TLSv13": "1.3", "SSLv3": "3.0", "SSLv2": "2.0"}


def _time(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        # JSON::TS_MILLIS writes integer milliseconds; seconds this large would be past the year 5000
        return from_epoch(value / 1000 if abs(value) > 1e11 else value)
    if isinstance(value, str):
        return parse_iso(value)
    return None


def _put(f: dict[str, Any], v: dict[str, Any], pairs: tuple[tuple[str, str], ...]) -> None:
    for zeek, ecs in pairs:
        value = v.get(zeek)
        if value is not None:
            f[ecs] = value


def _conn(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = _NETWORK
    f["event.type"] = ["connection"]
    _put(f, v, (("service", "network.protocol"), ("orig_bytes", "source.bytes"), ("resp_bytes", "destination.bytes"),
                ("orig_pkts", "source.packets"), ("resp_pkts", "destination.packets"), ("conn_state", "event.action")))
    if isinstance(d := v.get("duration"), int | float) and math.isfinite(d):
        f["event.duration"] = int(d * 1_000_000_000)
    if type(sent := f.get("source.bytes")) is int and type(received := f.get("destination.bytes")) is int:
        f["network.bytes"] = sent + received


def _dns(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = _NETWORK
    f["event.type"] = _PROTOCOL
    f["network.protocol"] = "dns"
    _put(f, v, (("query", "dns.question.name"), ("qtype_name", "dns.question.type"),
                ("qclass_name", "dns.question.class"), ("trans_id", "dns.id"), ("rcode_name", "dns.response_code")))
    answers = v.get("answers")
    if isinstance(answers, list) and answers:
        f["dns.answers.data"] = answers
        ips = [a for a in answers if isinstance(a, str) and _looks_like_ip(a)]
        if ips:
            f["dns.resolved_ip"] = ips


def _looks_like_ip(text: str) -> bool:
    # answers mix addresses with CNAME/TXT data; a cheap shape test is enough to pick the addresses
    return (text.count(".") == 3 and text.replace(".", "").isdigit()) or (":" in text and " " not in text)


def _http(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = ["network", "web"]
    f["event.type"] = ["access", "protocol"]
    f["network.protocol"] = "http"
    _put(f, v, (("method", "http.request.method"), ("host", "url.domain"), ("uri", "url.original"),
                ("referrer", "http.request.referrer"), ("user_agent", "user_agent.original"),
                ("status_code", "http.response.status_code"), ("request_body_len", "http.request.body.bytes"),
                ("response_body_len", "http.response.body.bytes"), ("version", "http.version"),
                ("username", "url.username")))


def _ssl(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = _NETWORK
    f["event.type"] = _PROTOCOL
    f["network.protocol"] = "tls"
    _put(f, v, (("cipher", "tls.cipher"), ("curve", "tls.curve"), ("resumed", "tls.resumed"),
                ("established", "tls.established"), ("subject", "tls.server.subject"),
                ("next_protocol", "tls.next_protocol"), ("client_subject", "tls.client.subject"),
                ("client_issuer", "tls.client.issuer"), ("client_issuer_subject", "tls.client.issuer")))
    issuer = v.get("issuer", v.get("issuer_subject"))
    if issuer is not None:
        f["tls.server.issuer"] = issuer
    if (sni := v.get("server_name")) is not None:
        f["tls.client.server_name"] = sni  # the ECS name
        f["tls.server.sni"] = sni  # the name this project's detectors were promised
    if isinstance(version := v.get("version"), str):
        if version in _TLS_VERSIONS:
            f["tls.version"] = _TLS_VERSIONS[version]
            f["tls.version_protocol"] = "ssl" if version.startswith("SSL") else "tls"
        else:
            f["tls.version"] = version
    for zeek, ecs in (("not_valid_before", "tls.server.not_before"), ("not_valid_after", "tls.server.not_after")):
        if (when := _time(v.get(zeek))) is not None:
            f[ecs] = when


def _x509(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = _NETWORK
    f["event.type"] = _INFO
    _put(f, v, (("id", "zeek.file_id"), ("fingerprint", "x509.hash.sha256"),
                ("certificate.version", "x509.version_number"),
                ("certificate.serial", "x509.serial_number"),
                ("certificate.subject", "x509.subject.distinguished_name"),
                ("certificate.issuer", "x509.issuer.distinguished_name"),
                ("certificate.key_alg", "x509.public_key_algorithm"),
                ("certificate.sig_alg", "x509.signature_algorithm"),
                ("certificate.key_length", "x509.public_key_size"), ("certificate.curve", "x509.public_key_curve"),
                ("certificate.exponent", "x509.public_key_exponent"), ("san.dns", "x509.alternative_names")))
    for zeek, ecs in (("certificate.not_valid_before", "x509.not_before"),
                      ("certificate.not_valid_after", "x509.not_after")):
        if (when := _time(v.get(zeek))) is not None:
            f[ecs] = when


def _files(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = ["file"]
    f["event.type"] = _INFO
    _put(f, v, (("fuid", "zeek.file_id"), ("filename", "file.name"), ("mime_type", "file.mime_type"),
                ("md5", "file.hash.md5"), ("sha1", "file.hash.sha1"), ("sha256", "file.hash.sha256"),
                ("source", "network.protocol")))
    size = v.get("total_bytes", v.get("seen_bytes"))
    if size is not None:
        f["file.size"] = size
    if isinstance(p := f.get("network.protocol"), str):
        f["network.protocol"] = p.lower()
    # the file flowed from a transmitting to a receiving host
    if isinstance(tx := v.get("tx_hosts"), list) and tx:
        f["source.ip"] = tx[0]
    if isinstance(rx := v.get("rx_hosts"), list) and rx:
        f["destination.ip"] = rx[0]
    if isinstance(uids := v.get("conn_uids"), list) and uids:
        f["zeek.session_id"] = uids[0]
        f["zeek.session_ids"] = uids


def _notice(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.kind"] = "alert"
    f["event.category"] = ["network", "intrusion_detection"]
    f["event.type"] = _INFO
    _put(f, v, (("note", "rule.name"), ("msg", "message"), ("sub", "event.reason"), ("fuid", "zeek.file_id"),
                ("file_mime_type", "file.mime_type")))
    if "source.ip" not in f and (src := v.get("src")) is not None:
        f["source.ip"] = src
    if "destination.ip" not in f and (dst := v.get("dst")) is not None:
        f["destination.ip"] = dst
    if isinstance(actions := v.get("actions"), list) and actions:
        f["event.action"] = actions[0]


def _weird(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = _NETWORK
    f["event.type"] = _INFO
    _put(f, v, (("name", "event.action"), ("addl", "event.reason")))


def _address(text: Any) -> Any:
    return text[1:-1] if isinstance(text, str) and text.startswith("<") and text.endswith(">") else text


def _smtp(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = ["network", "email"]
    f["event.type"] = _PROTOCOL
    f["network.protocol"] = "smtp"
    _put(f, v, (("subject", "email.subject"), ("msg_id", "email.message_id"), ("user_agent", "user_agent.original")))
    if (sender := v.get("mailfrom")) is not None:
        f["email.from.address"] = [_address(sender)]
    if isinstance(rcpt := v.get("rcptto"), list) and rcpt:
        f["email.to.address"] = [_address(r) for r in rcpt]


def _ftp(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = _NETWORK
    f["event.type"] = _PROTOCOL
    f["network.protocol"] = "ftp"
    # the password Zeek logged stays in `original` only: no ECS field invites copying it around
    _put(f, v, (("user", "user.name"), ("command", "event.action"), ("mime_type", "file.mime_type"),
                ("file_size", "file.size"), ("fuid", "zeek.file_id")))


def _dhcp(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = _NETWORK
    f["event.type"] = _PROTOCOL
    f["network.protocol"] = "dhcp"
    _put(f, v, (("mac", "source.mac"), ("host_name", "host.hostname"), ("domain", "host.domain")))
    if "source.ip" not in f and (client := v.get("client_addr")) is not None:
        f["source.ip"] = client
    if "destination.ip" not in f and (server := v.get("server_addr")) is not None:
        f["destination.ip"] = server
    if isinstance(uids := v.get("uids"), list) and uids:
        f["zeek.session_id"] = uids[0]
        f["zeek.session_ids"] = uids
    if isinstance(types := v.get("msg_types"), list) and types:
        f["event.action"] = types[-1]


def _kerberos(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = ["network", "authentication"]
    f["event.type"] = _INFO
    f["network.protocol"] = "kerberos"
    _put(f, v, (("request_type", "event.action"), ("client", "user.name"), ("service", "destination.service.name"),
                ("error_msg", "error.message")))
    if isinstance(ok := v.get("success"), bool):
        f["event.outcome"] = "success" if ok else "failure"


def _dce_rpc(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = _NETWORK
    f["event.type"] = _PROTOCOL
    f["network.protocol"] = "dce_rpc"
    _put(f, v, (("operation", "event.action"),))


def _smb_files(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = ["network", "file"]
    f["event.type"] = _INFO
    f["network.protocol"] = "smb"
    _put(f, v, (("action", "event.action"), ("name", "file.name"), ("path", "file.directory"), ("size", "file.size"),
                ("fuid", "zeek.file_id")))


def _smb_mapping(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.category"] = _NETWORK
    f["event.type"] = _PROTOCOL
    f["network.protocol"] = "smb"
    _put(f, v, (("path", "file.directory"),))


def _named_protocol(protocol: str) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def handler(f: dict[str, Any], v: dict[str, Any]) -> None:
        f["event.category"] = _NETWORK
        f["event.type"] = _PROTOCOL
        f["network.protocol"] = protocol

    return handler


def _metric(f: dict[str, Any], v: dict[str, Any]) -> None:
    f["event.kind"] = "metric"


_HANDLERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "conn": _conn, "dns": _dns, "http": _http, "ssl": _ssl, "x509": _x509, "files": _files, "notice": _notice,
    "weird": _weird, "smtp": _smtp, "ftp": _ftp, "dhcp": _dhcp, "kerberos": _kerberos, "dce_rpc": _dce_rpc,
    "smb_files": _smb_files, "smb_mapping": _smb_mapping, "ntp": _named_protocol("ntp"),
    "ssh": _named_protocol("ssh"), "rdp": _named_protocol("rdp"), "sip": _named_protocol("sip"),
    "snmp": _named_protocol("snmp"), "ntlm": _named_protocol("ntlm"), "irc": _named_protocol("irc"),
    "mysql": _named_protocol("mysql"), "radius": _named_protocol("radius"), "modbus": _named_protocol("modbus"),
    "dnp3": _named_protocol("dnp3"), "socks": _named_protocol("socks"),
    "stats": _metric, "capture_loss": _metric, "app_stats": _metric, "weird_stats": _metric,
}


def normalise(log: str, v: dict[str, Any]) -> dict[str, Any]:
    """ECS fields of one record whose values are already typed (JSON, or TSV after conversion)."""
    f: dict[str, Any] = {
        "event.kind": "event", "event.module": "zeek", "event.dataset": f"zeek.{log}", "observer.type": "zeek",
    }
    _put(f, v, (("uid", "zeek.session_id"), ("id.orig_h", "source.ip"), ("id.orig_p", "source.port"),
                ("id.resp_h", "destination.ip"), ("id.resp_p", "destination.port"), ("proto", "network.transport"),
                ("community_id", "network.community_id")))
    # Zeek JSON can also nest the id: {"id": {"orig_h": ...}} when not flattened
    if isinstance(ident := v.get("id"), dict):
        _put(f, ident, (("orig_h", "source.ip"), ("orig_p", "source.port"), ("resp_h", "destination.ip"),
                        ("resp_p", "destination.port")))
    handler = _HANDLERS.get(log)
    if handler is not None:
        handler(f, v)
    return f


# --- reading -----------------------------------------------------------------------------------------


class ZeekFormat:
    name: ClassVar[str] = NAME
    description: ClassVar[str] = "Zeek logs: ASCII TSV with #fields headers, or JSON lines"

    def sniff(self, head: bytes, filename: str = "") -> float:
        if head.startswith(BOM):
            head = head[3:]
        if head.startswith(b"#separator"):
            return 0.95
        if b"\n#fields\t" in head[:4096] and head.startswith(b"#"):
            return 0.9
        objects = head_objects(head)
        if not objects:
            return 0.0
        zeekish = sum(1 for o in objects if _zeekish(o))
        if zeekish == len(objects):
            return 0.9
        if log_from_filename(filename):
            return 0.8 if zeekish else 0.6
        return 0.6 if zeekish * 2 > len(objects) else 0.0

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        header = _Header()
        converters: list[Callable[[str], Any]] | None = None
        file_log = log_from_filename(source)
        base = _scan_prefix(stream, start, header) if start > 0 else 0
        if header.fields is not None:
            converters = header.converters()
        for line, position, number in iter_lines(stream, start):
            record = base + number
            if line is None:
                yield too_long(NAME, source, position, record)
                continue
            if record == 1 and line.startswith(BOM):
                line = line[3:]
            first = line[:1]
            if first == b"#":
                text = line.decode("utf-8", "backslashreplace")
                header.line(text)
                if text.startswith(("#fields", "#types", "#separator", "#set_separator", "#empty_field")):
                    converters = header.converters() if header.fields is not None else None
                continue  # header and #close lines are not records
            if first == b"{" or (first in b" \t" and line.lstrip()[:1] == b"{"):
                yield self._json(line, source, position, record, file_log)
                continue
            if not line.strip():
                continue  # blank line: not a record
            yield self._row(line, source, position, record, header, converters, file_log)

    def _json(self, line: bytes, source: str, position: int, record: int, file_log: str) -> Event | Reject:
        try:
            o = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            failed = json_failure(line, exc, NAME, source, position, record)
            if type(failed) is not dict:
                return failed  # a Reject (the line is not blank: it starts with "{")
            o = failed
        if not isinstance(o, dict):
            return not_object(o, line, NAME, source, position, record)
        log = o.get("_path") if isinstance(o.get("_path"), str) else (file_log or _guess_log(o))
        if "ts" in o:
            ts = _time(o["ts"])
            if ts is None:
                reason = f"line {record}: invalid 'ts': {str(o['ts'])[:64]!r}"
                return Reject(source, position, reason, line, NAME, record)
        elif log in _UNTIMED_LOGS:
            ts = NO_TIME
        else:
            # Suricata EVE, IoMT telemetry, any JSON forced through --format zeek: not stamped 1970
            found = ", ".join(list(o)[:6])
            reason = (f"line {record}: not a Zeek record: no 'ts' member (found {found or 'no members'}; every "
                      "Zeek log but loaded_scripts has one)")
            return Reject(source, position, reason, line, NAME, record)
        return _event(ts, log, o, o, line, source, position, record)

    def _row(
        self, line: bytes, source: str, position: int, record: int, header: _Header,
        converters: list[Callable[[str], Any]] | None, file_log: str,
    ) -> Event | Reject:
        def reject(reason: str) -> Reject:
            return Reject(source, position, f"line {record}: {reason}", line, NAME, record)

        if header.fields is None or converters is None:
            return reject("data row before any #fields header")
        try:
            text = line.decode()
        except UnicodeDecodeError:
            return reject(utf8_reason(line) + " (Zeek escapes such bytes as \\xNN)")
        cells = text.split(header.separator)
        fields = header.fields
        if len(cells) != len(fields):
            return reject(f"{len(cells)} columns, expected {len(fields)}")
        unset, empty = header.unset, header.empty
        original: dict[str, str | None] = {}
        values: dict[str, Any] = {}
        for name, cell, convert in zip(fields, cells, converters, strict=True):
            if cell == unset:
                original[name] = None
                continue
            if cell == empty:
                original[name] = ""
                values[name] = "" if convert is _unescape or convert in _SCALARS.values() else []
                continue
            original[name] = _unescape(cell)
            try:
                values[name] = convert(cell)
            except ValueError as exc:
                return reject(f"field {name!r}: {cell[:64]!r} is not a valid {_type_of(header, name)} ({exc})")
        log = header.path or file_log or "unknown"
        if "ts" in fields:
            ts = _time(values.get("ts"))
            if ts is None:
                return reject(f"invalid or unset 'ts': {original.get('ts')!r}")
        else:
            ts = NO_TIME
        return _event(ts, log, values, original, line, source, position, record)


def _event(
    ts: datetime, log: str, values: dict[str, Any], original: Any, line: bytes, source: str, position: int, record: int
) -> Event | Reject:
    try:
        fields = normalise(log, values)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        # well-formed JSON whose members have types Zeek never writes: quarantined, with where and why
        reason = f"line {record}: unexpected value types in a {log} record: {type(exc).__name__}: {exc}"
        return Reject(source, position, reason, line, NAME, record)
    return Event(ts, fields, original, source, record, position)


def _type_of(header: _Header, name: str) -> str:
    if header.fields and header.types and len(header.types) == len(header.fields):
        return header.types[header.fields.index(name)]
    return "value"


def _zeekish(o: dict[str, Any]) -> bool:
    if "_path" in o or "id.orig_h" in o:
        return True
    if "ts" not in o or "timestamp" in o or "event_type" in o:
        return False
    return any(k in o for k in ("uid", "uids", "fuid", "peer")) or any(k.startswith("certificate.") for k in o)


def _scan_prefix(stream: BinaryIO, start: int, header: _Header) -> int:
    """Apply the header lines found before `start` and return the number of lines there.

    Only a TSV file (first byte `#`) needs the headers; for JSON a newline count is enough. A growing file's
    header lines and count so far are remembered (`prefix_memo`), so a follower's pass scans only what is new.
    """
    memo = prefix_memo(stream)
    if memo is None or (tsv := memo.get("zeek-tsv")) is None:
        stream.seek(0)
        tsv = stream.read(1) == b"#"
        if memo is not None:
            memo["zeek-tsv"] = tsv
    if not tsv:
        return count_lines_before(stream, start)
    offset, count, headers = memo.get("zeek", (0, 0, ())) if memo is not None else (0, 0, ())
    if offset > start:
        offset, count, headers = 0, 0, ()
    found = list(headers)
    for line, position, _ in iter_lines(stream, offset):
        if position > start:
            break
        count += 1
        if line is not None and line[:1] == b"#":
            found.append(line.decode("utf-8", "backslashreplace"))
    for text in found:
        header.line(text)
    if memo is not None:
        memo["zeek"] = (start, count, tuple(found))
    return count


FORMAT = ZeekFormat()
