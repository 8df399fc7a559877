"""Suricata EVE JSON (one object per line, every event type) normalised to ECS.

Common to all events: `@timestamp` from `timestamp`, `event.module` "suricata", `event.dataset`
"suricata.<event_type>", `observer.type` "suricata", `observer.name` (the `host` Suricata writes),
`source.*` / `destination.*`, `network.transport` (from `proto`), `network.protocol` (`app_proto`),
`network.community_id` (when Suricata was told to write it), `suricata.flow_id`.
Per event type (a dispatch table, so each line costs one dict lookup): alert → `rule.*`,
`event.severity`, `event.action`; flow/netflow → bytes, packets, start, end, duration; dns, http,
tls, smtp/email, fileinfo, anomaly, dhcp, ssh, stats; app-layer objects carried by alerts and
fileinfo events (http, tls, dns, smtp, email) are mapped too.

This is the hot path of ingestion (bench target: at least half the speed of a bare `orjson.loads`
loop), hence plain dict work, no per-event regex, no copies: `original` is the parsed object itself
and `original_json` the line it was parsed from (the store writes it as is). What is the same for
every event of one type (kind, module, dataset, observer, category, type, a fixed protocol) is a
template dict per event type, copied at C speed, so the handlers only read the type's own section.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, BinaryIO, ClassVar

import orjson

from healthswarm.ingest.formats.lines import iter_lines
from healthswarm.ingest.formats.rows import count_lines_before, head_objects, json_failure, not_object, too_long
from healthswarm.ingest.formats.timestamps import parse_iso
from healthswarm.model import Event, Reject

NAME = "suricata"

_fromiso = datetime.fromisoformat
_MICROSECOND = timedelta(microseconds=1)
_OFFSETS: dict[str, timedelta] = {"+0000": timedelta(0), "-0000": timedelta(0)}


def _timestamp(text: Any) -> datetime | None:
    """EVE's `2022-02-08T09:40:29.080710-0500` to UTC.

    The local part is read as UTC and the (cached) offset subtracted: half the cost of
    `fromisoformat(text).astimezone(UTC)`, and this runs for every line. Other shapes go to `parse_iso`.
    """
    # the common case (an offset seen before) first, one slice and one lookup: flow lines have two
    if type(text) is str and len(text) == 31 and (offset := _OFFSETS.get(text[26:])) is not None:
        try:
            return _fromiso(text[:26] + "+00:00") - offset if offset else _fromiso(text[:26] + "+00:00")
        except (ValueError, OverflowError):
            return None
    if type(text) is not str:
        return None
    if len(text) == 31:
        zone = text[26:]
        if len(_OFFSETS) < 64 and zone[0] in "+-" and zone[1:].isascii() and zone[1:].isdigit():
            hours, minutes = int(zone[1:3]), int(zone[3:5])
            if hours < 24 and minutes < 60:  # bounded cache of real offsets; anything else goes to parse_iso
                delta = timedelta(hours=hours, minutes=minutes)
                _OFFSETS[zone] = delta if zone[0] == "+" else -delta
                return _timestamp(text)
    elif len(text) == 19 and text[10:11] == "T":  # certificate dates come without a zone: UTC
        try:
            return _fromiso(text + "+00:00")
        except ValueError:
            return None
    return parse_iso(text)


# event.category / event.type values; lists are shared between events (treat as read-only)
_NETWORK = ["network"]
_PROTOCOL = ["protocol"]
_INFO = ["info"]
_CONNECTION_END = ["connection", "end"]
_DENIED = ["denied"]
_ALLOWED = ["allowed"]


def _flow_counts(f: dict[str, Any], flow: dict[str, Any]) -> None:
    if (v := flow.get("bytes_toserver")) is not None:
        f["source.bytes"] = v
    if (v := flow.get("bytes_toclient")) is not None:
        f["destination.bytes"] = v
    if (v := flow.get("pkts_toserver")) is not None:
        f["source.packets"] = v
    if (v := flow.get("pkts_toclient")) is not None:
        f["destination.packets"] = v


def _span(f: dict[str, Any], section: dict[str, Any]) -> None:
    start, end = _timestamp(section.get("start")), _timestamp(section.get("end"))
    # datetimes, not text: isoformat() would cost more than the rest of the line (the store writes them as RFC 3339)
    if start:
        f["event.start"] = start
    if end:
        f["event.end"] = end
    if start and end:
        f["event.duration"] = (end - start) // _MICROSECOND * 1000  # ECS: nanoseconds


def _flow(f: dict[str, Any], o: dict[str, Any]) -> None:
    # a third of EVE lines: _span inlined, _timestamp's common case first (measured over the bench
    # corpus's 72,358 flow lines: 0.43 -> 0.38 CPU s, median of 9, load 7 on 2 cores)
    flow = o.get("flow")
    if type(flow) is dict:
        _flow_counts(f, flow)
        get = flow.get
        start, end = _timestamp(get("start")), _timestamp(get("end"))
        if start:
            f["event.start"] = start
        if end:
            f["event.end"] = end
            if start:
                f["event.duration"] = (end - start) // _MICROSECOND * 1000  # ECS: nanoseconds
        if (v := get("state")) is not None:
            f["event.action"] = v
        if (v := get("reason")) is not None:
            f["event.reason"] = v


def _netflow(f: dict[str, Any], o: dict[str, Any]) -> None:
    nf = o.get("netflow")
    if type(nf) is dict:
        if (v := nf.get("bytes")) is not None:
            f["network.bytes"] = v
        if (v := nf.get("pkts")) is not None:
            f["network.packets"] = v
        _span(f, nf)


def _dns_section(f: dict[str, Any], dns: dict[str, Any]) -> None:
    name, qtype = dns.get("rrname"), dns.get("rrtype")
    queries = dns.get("queries")  # EVE v3 (Suricata 8) lists the questions
    if name is None and type(queries) is list and queries and type(queries[0]) is dict:
        name, qtype = queries[0].get("rrname"), queries[0].get("rrtype")
    if name is not None:
        f["dns.question.name"] = name
    if qtype is not None:
        f["dns.question.type"] = qtype
    if (v := dns.get("type")) is not None:
        f["dns.type"] = v
    if (v := dns.get("id")) is not None:
        f["dns.id"] = v
    if (v := dns.get("rcode")) is not None:
        f["dns.response_code"] = v
    grouped = dns.get("grouped")
    if type(grouped) is dict:
        ips = [*(grouped.get("A") or ()), *(grouped.get("AAAA") or ())]
        if ips:
            f["dns.resolved_ip"] = ips
    elif type(answers := dns.get("answers")) is list:
        ips = [a["rdata"] for a in answers if type(a) is dict and a.get("rrtype") in ("A", "AAAA") and "rdata" in a]
        if ips:
            f["dns.resolved_ip"] = ips


def _dns(f: dict[str, Any], o: dict[str, Any]) -> None:
    dns = o.get("dns")
    if type(dns) is dict:
        _dns_section(f, dns)


def _http_section(f: dict[str, Any], http: dict[str, Any]) -> None:
    if (v := http.get("url")) is not None:
        f["url.original"] = v
    if (v := http.get("hostname")) is not None:
        f["url.domain"] = v
    if (v := http.get("http_method")) is not None:
        f["http.request.method"] = v
    if (v := http.get("status")) is not None:
        f["http.response.status_code"] = v
    if (v := http.get("http_user_agent")) is not None:
        f["user_agent.original"] = v
    if (v := http.get("http_refer")) is not None:
        f["http.request.referrer"] = v
    if (v := http.get("http_content_type")) is not None:
        f["http.response.mime_type"] = v
    if (v := http.get("length")) is not None:
        f["http.response.body.bytes"] = v
    if type(v := http.get("protocol")) is str and v.startswith("HTTP/"):
        f["http.version"] = v[5:]


def _http(f: dict[str, Any], o: dict[str, Any]) -> None:
    http = o.get("http")
    if type(http) is dict:
        _http_section(f, http)


def _tls_section(f: dict[str, Any], tls: dict[str, Any]) -> None:
    if (v := tls.get("sni")) is not None:
        f["tls.client.server_name"] = v  # the ECS name
        f["tls.server.sni"] = v  # the name this project's detectors were promised
    if (v := tls.get("subject")) is not None:
        f["tls.server.subject"] = v
    if (v := tls.get("issuerdn")) is not None:
        f["tls.server.issuer"] = v
    if type(v := tls.get("fingerprint")) is str:
        f["tls.server.hash.sha1"] = v.replace(":", "").upper()
    if type(v := tls.get("version")) is str:
        proto, _, number = v.partition(" ")
        f["tls.version_protocol"] = proto.lower()
        if number:
            f["tls.version"] = number
    if (v := tls.get("serial")) is not None:
        f["tls.server.x509.serial_number"] = v
    if (v := _timestamp(tls.get("notbefore"))) is not None:
        f["tls.server.not_before"] = v
    if (v := _timestamp(tls.get("notafter"))) is not None:
        f["tls.server.not_after"] = v
    if type(ja3 := tls.get("ja3")) is dict and (v := ja3.get("hash")) is not None:
        f["tls.client.ja3"] = v
    if type(ja3s := tls.get("ja3s")) is dict and (v := ja3s.get("hash")) is not None:
        f["tls.server.ja3s"] = v


def _tls(f: dict[str, Any], o: dict[str, Any]) -> None:
    tls = o.get("tls")
    if type(tls) is dict:
        _tls_section(f, tls)


def _address(text: Any) -> Any:
    # SMTP envelope addresses come as "<a@b>"
    return text[1:-1] if type(text) is str and text.startswith("<") and text.endswith(">") else text


def _smtp_section(f: dict[str, Any], o: dict[str, Any]) -> None:
    smtp = o.get("smtp")
    if type(smtp) is dict:
        if (v := smtp.get("mail_from")) is not None:
            f["email.from.address"] = [_address(v)]
        if type(v := smtp.get("rcpt_to")) is list:
            f["email.to.address"] = [_address(a) for a in v]
    email = o.get("email")
    if type(email) is dict:
        if (v := email.get("subject")) is not None:
            f["email.subject"] = v
        if (v := email.get("message_id")) is not None:
            f["email.message_id"] = v
        if type(v := email.get("attachment")) is list:
            f["email.attachments.file.name"] = v


def _fileinfo(f: dict[str, Any], o: dict[str, Any]) -> None:
    fi = o.get("fileinfo")
    if type(fi) is dict:
        if (v := fi.get("filename")) is not None:
            f["file.name"] = v
        if (v := fi.get("size")) is not None:
            f["file.size"] = v
        if (v := fi.get("magic")) is not None:
            f["file.type"] = v
        for algo in ("md5", "sha1", "sha256"):
            if (v := fi.get(algo)) is not None:
                f["file.hash." + algo] = v
    _app_layer(f, o)


def _alert(f: dict[str, Any], o: dict[str, Any]) -> None:
    alert = o.get("alert")
    action = "allowed"
    if type(alert) is dict:
        if (v := alert.get("signature_id")) is not None:
            f["rule.id"] = str(v)
        if (v := alert.get("signature")) is not None:
            f["rule.name"] = v
        if (v := alert.get("category")) is not None:
            f["rule.category"] = v
        if (v := alert.get("rev")) is not None:
            f["rule.version"] = str(v)
        if (v := alert.get("gid")) is not None:
            f["rule.ruleset"] = f"gid:{v}"
        if (v := alert.get("severity")) is not None:
            f["event.severity"] = v
        action = alert.get("action") or action
        f["event.action"] = action
    f["event.type"] = _DENIED if action in ("blocked", "drop") else _ALLOWED
    flow = o.get("flow")
    if type(flow) is dict:
        _flow_counts(f, flow)
    _app_layer(f, o)


def _app_layer(f: dict[str, Any], o: dict[str, Any]) -> None:
    """The protocol objects an alert or fileinfo event carries alongside its own."""
    if type(v := o.get("http")) is dict:
        _http_section(f, v)
    if type(v := o.get("tls")) is dict:
        _tls_section(f, v)
    if type(v := o.get("dns")) is dict:
        _dns_section(f, v)
    if "smtp" in o or "email" in o:
        _smtp_section(f, o)


def _anomaly(f: dict[str, Any], o: dict[str, Any]) -> None:
    an = o.get("anomaly")
    if type(an) is dict:
        if (v := an.get("event")) is not None:
            f["event.action"] = v
        if (v := an.get("app_proto")) is not None and "network.protocol" not in f:
            f["network.protocol"] = v


def _dhcp(f: dict[str, Any], o: dict[str, Any]) -> None:
    d = o.get("dhcp")
    if type(d) is dict:
        if (v := d.get("client_mac")) is not None:
            f["source.mac"] = v
        if (v := d.get("hostname")) is not None:
            f["host.hostname"] = v
        if (v := d.get("dhcp_type")) is not None:
            f["event.action"] = v


def _ssh(f: dict[str, Any], o: dict[str, Any]) -> None:
    s = o.get("ssh")
    if type(s) is dict and type(c := s.get("client")) is dict and (v := c.get("software_version")) is not None:
        f["user_agent.original"] = v


def _stats(f: dict[str, Any], o: dict[str, Any]) -> None:
    stats = o.get("stats")
    if type(stats) is dict and (v := stats.get("uptime")) is not None:
        f["suricata.stats.uptime"] = v


def _protocol(f: dict[str, Any], o: dict[str, Any]) -> None:
    """Any other app-layer event type (smb, krb5, rdp, sip, snmp, mqtt, ...): the protocol it names."""
    if "network.protocol" not in f:
        f["network.protocol"] = o["event_type"]


Handler = Callable[[dict[str, Any], dict[str, Any]], None]

# Per event type: the fields every event of the type has (they now come first in `fields`, before
# source and destination) and the handler for the rest. A type with a fixed `network.protocol`
# ignores `app_proto`, as its handler used to overwrite it.
_KINDS: dict[str, tuple[dict[str, Any], Handler | None]] = {
    "alert": ({"event.kind": "alert", "event.category": ["network", "intrusion_detection"]}, _alert),
    "flow": ({"event.category": _NETWORK, "event.type": _CONNECTION_END}, _flow),
    "netflow": ({"event.category": _NETWORK, "event.type": _CONNECTION_END}, _netflow),
    "dns": ({"event.category": _NETWORK, "event.type": _PROTOCOL, "network.protocol": "dns"}, _dns),
    "http": ({"event.category": ["network", "web"], "event.type": ["access", "protocol"], "network.protocol": "http"},
             _http),
    "tls": ({"event.category": _NETWORK, "event.type": _PROTOCOL, "network.protocol": "tls"}, _tls),
    "smtp": ({"event.category": ["network", "email"], "event.type": _PROTOCOL, "network.protocol": "smtp"},
             _smtp_section),
    "fileinfo": ({"event.category": ["network", "file"], "event.type": _INFO}, _fileinfo),
    "anomaly": ({"event.category": _NETWORK, "event.type": _INFO}, _anomaly),
    "dhcp": ({"event.category": _NETWORK, "event.type": _PROTOCOL, "network.protocol": "dhcp"}, _dhcp),
    "ssh": ({"event.category": _NETWORK, "event.type": _PROTOCOL, "network.protocol": "ssh"}, _ssh),
    "drop": ({"event.category": _NETWORK, "event.type": _DENIED, "event.action": "drop"}, None),
    "stats": ({"event.kind": "metric"}, _stats),
}
_OTHER: tuple[dict[str, Any], Handler | None] = ({"event.category": _NETWORK, "event.type": _PROTOCOL}, _protocol)
_TRANSPORTS = {"TCP": "tcp", "UDP": "udp", "ICMP": "icmp", "IPv6-ICMP": "ipv6-icmp", "SCTP": "sctp"}


class _Kind:
    """What the parser needs per event type, built once per type seen."""

    __slots__ = ("fixed_protocol", "handler", "template")

    def __init__(self, event_type: str) -> None:
        extra, self.handler = _KINDS.get(event_type, _OTHER)
        self.template: dict[str, Any] = {
            "event.kind": "event", "event.module": "suricata", "event.dataset": "suricata." + event_type,
            "observer.type": "suricata", **extra,
        }
        self.fixed_protocol = "network.protocol" in extra


_TYPES: dict[str, _Kind] = {name: _Kind(name) for name in _KINDS}


class SuricataFormat:
    name: ClassVar[str] = NAME
    description: ClassVar[str] = "Suricata EVE JSON lines (all event types)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        objects = head_objects(head)
        if not objects:
            # a first line longer than the head (a large payload): judge by its opening
            opening = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:4096]
            if opening.startswith(b"{") and b'"event_type"' in opening and b'"timestamp"' in opening:
                return 0.7
            return 0.0
        hits = sum(1 for o in objects if isinstance(o.get("event_type"), str) and isinstance(o.get("timestamp"), str))
        if hits == 0:
            return 0.0
        return 0.95 if hits == len(objects) else 0.7

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        # rows.json_lines and _timestamp's common case inlined: this loop is the ingest hot path, and
        # a generator or a call less per line is measurable on it
        kinds, transports, offsets = _TYPES, _TRANSPORTS, _OFFSETS
        loads, decode_error, timestamp, fromiso = orjson.loads, orjson.JSONDecodeError, _timestamp, _fromiso
        base = count_lines_before(stream, start)
        for line, position, number in iter_lines(stream, start):
            record = base + number
            if line is None:
                yield too_long(NAME, source, position, record)
                continue
            raw: bytes | None = line
            try:
                o = loads(line)
            except decode_error as exc:
                raw = None  # a blank line, garbage, or an object behind a byte-order mark
                o = json_failure(line, exc, NAME, source, position, record)
                if o is None:
                    continue
                if type(o) is Reject:
                    yield o
                    continue
            if type(o) is not dict:
                yield not_object(o, line, NAME, source, position, record)
                continue
            get = o.get
            event_type = get("event_type")
            text = get("timestamp")
            # EVE's own layout, 2022-02-08T09:40:29.080710-0500, with an offset seen before: as in _timestamp
            if type(text) is str and len(text) == 31 and (offset := offsets.get(text[26:])) is not None:
                try:
                    ts = fromiso(text[:26] + "+00:00") - offset if offset else fromiso(text[:26] + "+00:00")
                except (ValueError, OverflowError):
                    ts = None
            else:
                ts = timestamp(text)
            if ts is None or type(event_type) is not str:
                if type(event_type) is not str:
                    reason = f"line {record}: no 'event_type' string: not a Suricata EVE record"
                else:
                    reason = f"line {record}: invalid or missing 'timestamp': {str(text)[:64]!r}"
                yield Reject(source, position, reason, line, NAME, record)
                continue
            kind = kinds.get(event_type)
            if kind is None:
                kind = _Kind(event_type)
                if len(kinds) < 256:  # bounded: event types are few, but input is not trusted
                    kinds[event_type] = kind
            f = kind.template.copy()
            if "src_ip" in o:
                f["source.ip"] = o["src_ip"]
                if (v := get("src_port")) is not None:  # none for ICMP and friends
                    f["source.port"] = v
                if (v := get("dest_ip")) is not None:
                    f["destination.ip"] = v
                if (v := get("dest_port")) is not None:
                    f["destination.port"] = v
                if (v := get("proto")) is not None:
                    f["network.transport"] = transports.get(v) or str(v).lower()
                if not kind.fixed_protocol and (v := get("app_proto")) is not None and v != "failed":
                    f["network.protocol"] = v
                if (v := get("community_id")) is not None:
                    f["network.community_id"] = v
                if (v := get("flow_id")) is not None:
                    f["suricata.flow_id"] = v
            if (v := get("host")) is not None:
                f["observer.name"] = v
            if (v := get("in_iface")) is not None:
                f["observer.ingress.interface.name"] = v
            if (handler := kind.handler) is not None:
                try:
                    handler(f, o)
                except (TypeError, ValueError, AttributeError, OverflowError) as exc:
                    # a well-formed line whose sections have unexpected shapes: quarantine it, say where
                    reason = f"line {record}: unexpected shape in {event_type!r} event: {type(exc).__name__}: {exc}"
                    yield Reject(source, position, reason, line, NAME, record)
                    continue
            event = Event(ts, f, o, source, record, position)
            event.original_json = raw
            yield event


FORMAT = SuricataFormat()
