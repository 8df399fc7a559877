"""Windows event records → one flat dict with Sigma's field names, and the ECS fields derived from it.

Shared by `evtx` (records the `evtx` package renders as JSON) and `windows-json` (evtx_dump JSON,
winlogbeat 6/7+, OTRF Security-Datasets), so a Sigma rule sees the same `original` whatever the
transport.

The flat dict follows the Zircolite/Chainsaw convention:
- System fields by their element name, nested elements joined with `_` and the XML attribute
  level dropped: `EventID` (int), `Version`, `Level`, `Task`, `Opcode`, `Keywords` (hex text),
  `Channel`, `Computer`, `EventRecordID` (int), `Provider_Name`, `Provider_Guid`,
  `TimeCreated_SystemTime`, `Execution_ProcessID`, `Execution_ThreadID`, `Security_UserID`,
  `Correlation_ActivityID`; an attribute of a valued element is `<element>_<attribute>`
  (`EventID_Qualifiers`).
- every EventData item by its `Name`; unnamed `Data` items are `Data`, `Data_1`, `Data_2`…;
  `Binary` as written; UserData (and other payload sections such as ProcessingErrorData) flattened
  below their wrapper element, nested children joined with `_`.
- an EventData name equal to a System name (rare) is kept as `EventData_<Name>` so neither hides
  the other.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from functools import lru_cache
from typing import Any

from healthswarm.ingest.formats.timestamps import parse_iso

SYSTEM_ALIASES_FLAT = {
    # OTRF / NXLog key → the evtx-derived name Sigma rules use
    "Hostname": "Computer",
    "SourceName": "Provider_Name",
    "ProviderGuid": "Provider_Guid",
    "RecordNumber": "EventRecordID",
    "ExecutionProcessID": "Execution_ProcessID",
    "ThreadID": "Execution_ThreadID",
    "UserID": "Security_UserID",
    "ActivityID": "Correlation_ActivityID",
    "TimeCreated": "TimeCreated_SystemTime",
}

# Security events whose "who" is the target account (the one logging on), not the subject.
_TARGET_USER_EVENTS = frozenset({4624, 4625, 4634, 4647, 4648, 4768, 4769, 4771, 4776, 4778, 4779})
_SYSMON = "Microsoft-Windows-Sysmon"
_AUDIT_SUCCESS = 0x0020000000000000
_AUDIT_FAILURE = 0x0010000000000000
_TRANSPORTS = {"6": "tcp", "17": "udp", "1": "icmp", "tcp": "tcp", "udp": "udp"}
#: The flat fields the ECS network fields are read from (`ecs_fields`).
_NETWORK_KEYS = frozenset({"SourceIp", "IpAddress", "SourceAddress", "SourcePort", "IpPort", "SourceHostname",
                           "DestinationIp", "DestAddress", "DestinationPort", "DestPort", "DestinationHostname"})
#: (user name, domain, SID) field names, in the order `_user` tries them for Security logons and otherwise.
_TARGET_FIRST = (("TargetUserName", "TargetDomainName", "TargetUserSid"),
                 ("SubjectUserName", "SubjectDomainName", "SubjectUserSid"))
_SUBJECT_FIRST = _TARGET_FIRST[::-1]


def _text(value: Any) -> Any:
    """The value of an element rendered as {"#text": v, "#attributes": …}, or the value itself."""
    if isinstance(value, dict) and "#text" in value:
        return value["#text"]
    return value


def _flatten_into(out: dict[str, Any], prefix: str, value: Any) -> None:
    """Nested elements joined with `_`; the `#attributes` level dropped; xmlns attributes skipped."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "#attributes":
                if isinstance(child, dict):
                    for attr, attr_value in child.items():
                        if attr != "xmlns" and not attr.startswith("xmlns:"):
                            out[f"{prefix}_{attr}" if prefix else attr] = attr_value
            elif key == "#text":
                out[prefix or "text"] = child
            else:
                _flatten_into(out, f"{prefix}_{key}" if prefix else key, child)
    else:
        out[prefix] = value


def _int_or(value: Any) -> Any:
    if type(value) is int:  # the usual case first: a bool is no int here
        return value
    if isinstance(value, str):
        return _int_text(value)
    return value


@lru_cache(maxsize=4096)
def _int_text(value: str) -> int | str:
    # memoised: Keywords, LogonType, ports and ids repeat across events, and hex parsing is not cheap
    text = value.strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return value


def _keywords_hex(value: Any) -> Any:
    """NXLog writes Keywords as a signed 64-bit int; evtx renders `0x8020000000000000`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"0x{value & 0xFFFFFFFFFFFFFFFF:x}"
    return value


def _add_data(out: dict[str, Any], name: str, value: Any) -> None:
    out[f"EventData_{name}" if name in out else name] = value


def _add_unnamed(out: dict[str, Any], values: list[Any]) -> None:
    for index, item in enumerate(values):
        _add_data(out, "Data" if index == 0 else f"Data_{index}", _text(item))


#: element → attribute → the flat name `<element>_<attribute>` ('' for an xmlns declaration), built once: System
#: holds a handful of elements with attributes, and joining the names again for every record was a tenth of the
#: flattening. Bounded (a damaged or crafted file may name anything).
_ATTRIBUTE_NAMES: dict[str, dict[str, str]] = {}
_NO_NAMES: dict[str, str] = {}
_NAMES_MAX = 256


def _attribute_name(element: str, attr: str) -> str:
    name = "" if attr == "xmlns" or attr.startswith("xmlns:") else f"{element}_{attr}"
    names = _ATTRIBUTE_NAMES.get(element)
    if names is None and len(_ATTRIBUTE_NAMES) < _NAMES_MAX:
        names = _ATTRIBUTE_NAMES[element] = {}
    if names is not None and len(names) < _NAMES_MAX:
        names[attr] = name
    return name


def flatten_event_json(event: dict[str, Any]) -> dict[str, Any]:
    """The `Event` object of the evtx JSON rendering (evtx package, evtx_dump) → flat Sigma dict.

    Once per EVTX record on the hunt path: the common shapes (a plain value, an element with
    attributes only, an EventData name → text) are handled inline, tested cheapest first; the rest
    goes to `_flatten_into`.
    """
    out: dict[str, Any] = {}
    system = event.get("System")
    if isinstance(system, dict):
        for key, value in system.items():
            if type(value) is not dict:
                if value is not None:
                    out[key] = value
                continue
            attributes = value.get("#attributes")
            if len(value) == 1 and type(attributes) is dict and key:  # <Provider Name=… Guid=…/>
                names = _ATTRIBUTE_NAMES.get(key, _NO_NAMES)
                for attr, attr_value in attributes.items():
                    name = names.get(attr)
                    if name is None:
                        name = _attribute_name(key, attr)
                    if name:
                        out[name] = attr_value
            elif "#text" in value:
                out[key] = value["#text"]
                _flatten_into(out, key, {"#attributes": attributes if attributes is not None else {}})
            else:
                _flatten_into(out, key, value)
    for name in ("EventID", "EventRecordID"):
        value = out.get(name)
        if value is not None and type(value) is not int:
            out[name] = _int_or(value)
    data = event.get("EventData")
    if isinstance(data, dict):
        for name, value in data.items():
            if type(value) is not dict and name not in out and name != "Data" and name != "#attributes":
                out[name] = value  # the common item: <Data Name="…">text</Data>
            elif name == "#attributes":
                continue
            elif name == "Data":
                inner = _text(value)
                _add_unnamed(out, inner if isinstance(inner, list) else [inner])
            elif isinstance(value, dict):
                nested: dict[str, Any] = {}
                _flatten_into(nested, name, value)
                for key, item in nested.items():
                    _add_data(out, key, item)
            else:
                out[f"EventData_{name}"] = value
    elif isinstance(data, list):
        _add_unnamed(out, data)
    elif data is not None:
        _add_data(out, "Data", data)
    for section, value in event.items():
        if value is None or section in ("System", "EventData", "#attributes"):
            continue
        # UserData / ProcessingErrorData / RenderingInfo: children of the single wrapper element
        body = value
        if isinstance(value, dict) and section == "UserData" and len(value) == 1:
            body = next(iter(value.values()))
        nested = {}
        _flatten_into(nested, "", body if isinstance(body, dict) else {section: body})
        for key, item in nested.items():
            _add_data(out, key, item)
    return out


def flatten_winlogbeat(record: dict[str, Any]) -> dict[str, Any]:
    """winlogbeat 7+ (`winlog.*`) or 6.x (`event_id`, `event_data`, `computer_name`…) → flat Sigma dict."""
    winlog = record.get("winlog")
    w: dict[str, Any] = winlog if isinstance(winlog, dict) else record
    process = w.get("process") if isinstance(w.get("process"), dict) else {}
    thread = process.get("thread") if isinstance(process.get("thread"), dict) else {}
    user = w.get("user") if isinstance(w.get("user"), dict) else {}
    system: dict[str, Any] = {
        "EventID": _int_or(w.get("event_id")),
        "Version": w.get("version"),
        "Level": _level(record),
        "Task": w.get("task"),
        "Opcode": w.get("opcode"),
        "Keywords": w.get("keywords"),
        "TimeCreated_SystemTime": record.get("@timestamp"),
        "EventRecordID": _int_or(w.get("record_id", w.get("record_number"))),
        "Correlation_ActivityID": w.get("activity_id"),
        "Execution_ProcessID": process.get("pid", w.get("process_id")),
        "Execution_ThreadID": thread.get("id", w.get("thread_id")),
        "Channel": w.get("channel", w.get("log_name")),
        "Computer": w.get("computer_name"),
        "Security_UserID": user.get("identifier"),
        "Provider_Name": w.get("provider_name", w.get("source_name")),
        "Provider_Guid": w.get("provider_guid"),
    }
    out = {key: value for key, value in system.items() if value is not None}
    for section in ("event_data", "user_data"):
        data = w.get(section)
        if isinstance(data, dict):
            nested: dict[str, Any] = {}
            _flatten_into(nested, "", data)
            for key, item in nested.items():
                if key in ("xml_name", "Binary") and section == "user_data":
                    continue  # winlogbeat's own marker for the UserData wrapper, not event content
                if key.startswith("param") and key[5:].isdigit():
                    # winlogbeat names unnamed Data items param1…; Sigma sees them as Data, Data_1…
                    index = int(key[5:]) - 1
                    key = "Data" if index == 0 else f"Data_{index}"
                _add_data(out, key, item)
    message = record.get("message")
    if isinstance(message, str):
        out.setdefault("Message", message)
    return out


def _level(record: dict[str, Any]) -> Any:
    log = record.get("log")
    if isinstance(log, dict) and "level" in log:
        return log["level"]
    return record.get("level")


def flatten_flat(record: dict[str, Any]) -> dict[str, Any]:
    """OTRF / NXLog flat records: kept as written, plus the evtx-derived names Sigma rules use."""
    out = dict(record)
    for key, alias in SYSTEM_ALIASES_FLAT.items():
        if key in record and alias not in out:
            out[alias] = record[key]
    for key in ("EventID", "EventRecordID"):
        if key in out:
            out[key] = _int_or(out[key])
    if "Keywords" in out:
        out["Keywords"] = _keywords_hex(out["Keywords"])
    return out


def event_timestamp(flat: dict[str, Any]) -> datetime | None:
    """TimeCreated, else the shipper's @timestamp, else Sysmon's UtcTime (all UTC by definition)."""
    created = flat.get("TimeCreated_SystemTime")
    if type(created) is str and created[-1:] == "Z":  # as EVTX renders it: Python 3.11 reads the Z itself
        try:
            return datetime.fromisoformat(created)
        except ValueError:
            pass  # parse_iso below says what it can
    for key in ("TimeCreated_SystemTime", "@timestamp", "UtcTime"):
        value = flat.get(key)
        if isinstance(value, str) and (parsed := parse_iso(value)):
            return parsed
    return None


def _clean(value: Any) -> Any:
    """Windows writes '-' or '' for "none"; those are not values."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return value if text and text != "-" else None
    return value


def _pid(value: Any) -> int | None:
    if value is None:  # most fields are absent from most events
        return None
    if type(value) is int:  # as the evtx package renders ids: no text to clean or convert
        return value if value >= 0 else None
    value = _int_or(_clean(value))
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _ip(value: Any) -> str | None:
    if value is None:
        return None
    value = _clean(value)
    if not isinstance(value, str):
        return None
    return _ip_text(value)


@lru_cache(maxsize=4096)
def _ip_text(value: str) -> str | None:
    # memoised: the ipaddress module parses in Python, and logs repeat the same few addresses
    try:
        return str(ipaddress.ip_address(value.removeprefix("::ffff:")))
    except ValueError:
        return None


def _port(value: Any) -> int | None:
    port = _pid(value)
    return port if port is not None and port <= 65535 else None


def _basename(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1]


def _put(fields: dict[str, Any], pairs: tuple[tuple[str, Any], ...]) -> None:
    """`fields[name] = value` for each pair whose value is one (see `_clean`), in order.

    One loop over a tuple rather than a call per field: ecs_fields runs once per Windows event and
    most of its candidates are absent."""
    for name, value in pairs:
        if value is None:
            continue
        if isinstance(value, str):
            text = value.strip()
            if not text or text == "-":
                continue
        fields[name] = value


#: (EventID, Provider_Name, Channel) of the usual types (int, str, str) → the ECS fields those alone decide, and
#: whether the event is Sysmon's: a log holds a few hundred kinds of events, and these were a third of
#: `ecs_fields`. Bounded: the input names them.
_HEADS: dict[tuple[int, str, str], tuple[dict[str, Any], bool]] = {}
_HEADS_MAX = 4096


def _head(flat: dict[str, Any], event_id: Any, provider: Any) -> tuple[dict[str, Any], bool]:
    get = flat.get
    fields: dict[str, Any] = {"event.kind": "event", "observer.type": "windows"}
    _put(fields, (
        ("event.code", str(event_id) if event_id is not None else None),
        ("event.provider", provider),
        ("winlog.channel", get("Channel")),
        ("winlog.provider_name", provider),
        ("winlog.event_id", event_id),
    ))
    sysmon = (isinstance(provider, str) and provider.startswith(_SYSMON)) or str(get("Channel", "")).startswith(_SYSMON)
    return fields, sysmon


def ecs_fields(flat: dict[str, Any]) -> dict[str, Any]:
    """ECS fields for a flat Windows record (see docs/formats-host-clinical.md for the table)."""
    get = flat.get
    event_id = get("EventID")
    provider = get("Provider_Name")
    channel = get("Channel")
    if type(event_id) is int and type(provider) is str and type(channel) is str:
        key = (event_id, provider, channel)
        head = _HEADS.get(key)
        if head is None:
            if len(_HEADS) >= _HEADS_MAX:
                _HEADS.clear()
            head = _HEADS[key] = _head(flat, event_id, provider)
    else:
        head = _head(flat, event_id, provider)
    fields = head[0].copy()
    sysmon = head[1]
    _put(fields, (("winlog.record_id", _int_or(get("EventRecordID"))), ("host.name", get("Computer"))))

    keywords = _int_or(get("Keywords"))
    if isinstance(keywords, int):
        if keywords & _AUDIT_SUCCESS:
            fields["event.outcome"] = "success"
        elif keywords & _AUDIT_FAILURE:
            fields["event.outcome"] = "failure"
    elif get("EventType") in ("AUDIT_SUCCESS", "AUDIT_FAILURE"):
        fields["event.outcome"] = "success" if get("EventType") == "AUDIT_SUCCESS" else "failure"

    _user(flat, event_id, fields)
    if event_id == 4688 and not sysmon:
        _put(fields, (
            ("process.executable", get("NewProcessName")),
            ("process.command_line", get("CommandLine")),
            ("process.pid", _pid(get("NewProcessId"))),
            ("process.parent.executable", get("ParentProcessName")),
            ("process.parent.pid", _pid(get("ProcessId"))),
        ))
        fields["event.category"] = ["process"]
        fields["event.type"] = ["start"]
    elif sysmon:
        _put(fields, (
            ("process.executable", get("Image") or get("SourceImage")),
            ("process.command_line", get("CommandLine")),
            ("process.pid", _pid(get("ProcessId", get("SourceProcessId")))),
            ("process.entity_id", get("ProcessGuid", get("SourceProcessGUID"))),
            ("process.parent.executable", get("ParentImage")),
            ("process.parent.command_line", get("ParentCommandLine")),
            ("process.parent.pid", _pid(get("ParentProcessId"))),
        ))
        if event_id == 1:
            fields["event.category"] = ["process"]
            fields["event.type"] = ["start"]
        elif event_id == 3:
            fields["event.category"] = ["network"]
            fields["event.type"] = ["connection"]
    else:
        _put(fields, (("process.executable", get("ProcessName") or get("Application")),
                      ("process.pid", _pid(get("ProcessId")))))
    if "process.executable" in fields:
        fields["process.name"] = _basename(fields["process.executable"])

    # network: Sysmon 3 / 22, Security logons (IpAddress), WFP 515x (SourceAddress/DestAddress); most
    # events have none of these, and one set test skips the dozen look-ups and conversions
    if not _NETWORK_KEYS.isdisjoint(flat):
        _put(fields, (
            ("source.ip", _ip(get("SourceIp")) or _ip(get("IpAddress")) or _ip(get("SourceAddress"))),
            ("source.port", _port(get("SourcePort")) or _port(get("IpPort"))),
            ("source.domain", get("SourceHostname") or (get("WorkstationName") if "IpAddress" in flat else None)),
            ("destination.ip", _ip(get("DestinationIp")) or _ip(get("DestAddress"))),
            ("destination.port", _port(get("DestinationPort")) or _port(get("DestPort"))),
            ("destination.domain", get("DestinationHostname")),
        ))
    protocol = _clean(get("Protocol"))
    if protocol is not None and str(protocol).lower() in _TRANSPORTS:
        fields["network.transport"] = _TRANSPORTS[str(protocol).lower()]
    logon = get("LogonType")
    if isinstance(logon, (int, str)) and (logon := _pid(logon)) is not None:
        fields["winlog.logon.type"] = logon
    return fields


def _user(flat: dict[str, Any], event_id: Any, fields: dict[str, Any]) -> None:
    get = flat.get
    user = _clean(get("User"))
    if isinstance(user, str) and "\\" in user:
        domain, name = user.split("\\", 1)
        _put(fields, (("user.domain", domain), ("user.name", name)))
        return
    for name_key, domain_key, sid_key in _TARGET_FIRST if event_id in _TARGET_USER_EVENTS else _SUBJECT_FIRST:
        name = _clean(get(name_key))
        if name is not None:
            _put(fields, (("user.name", name), ("user.domain", get(domain_key)), ("user.id", get(sid_key))))
            return
    if user is not None:
        _put(fields, (("user.name", user),))
    elif (account := _clean(get("AccountName"))) is not None:  # NXLog's resolution of Security_UserID
        _put(fields, (("user.name", account), ("user.domain", get("Domain"))))
