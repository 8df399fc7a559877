"""Linux audit logs (auditd `audit.log`, raw or enriched; also records relayed behind a syslog header).

A record is `[node=NAME ]type=TYPE msg=audit(SECONDS.MILLIS:SERIAL): key=value …`. Consecutive records
with the same serial (SYSCALL, EXECVE, CWD, PATH, PROCTITLE … up to EOE) form one event; `original`
is their raw lines joined with "\\n" and `position` the byte offset after the last of them. Values:
"quoted" strings are unquoted; the fields auditd hex-encodes when they hold spaces or control
characters (proctitle, name, exe, comm, cwd, cmd, acct, data …) are decoded (proctitle's NUL
separators become spaces); the `msg='…'` payload of user-space records (USER_LOGIN, USER_CMD …) is
split into its own key=values; enriched logs (`log_format = ENRICHED`) add upper-case names after a
0x1D byte (`UID="alice"`), merged in too.

Fields: `auditd.sequence`, `auditd.record_type` (the first record's type), `auditd.record_types`,
`auditd.data` (the first record's key/values), `auditd.paths` (PATH records), `auditd.key`,
`auditd.result`, `event.action` (the syscall name for SYSCALL — from the enriched SYSCALL field or the
x86_64 table below —, else the record type in lower case), `event.outcome`, `user.id` (uid),
`user.audit.id` (auid, unless unset 4294967295), `user.effective.id`, `group.id`, `user.name`
(enriched UID or acct), `process.executable`, `process.name` (comm), `process.pid`,
`process.parent.pid`, `process.title` (PROCTITLE), `process.args` (EXECVE), `process.working_directory`,
`file.path`, `source.ip`/`source.address` (addr), `host.name` (node=), `tags` (the audit key).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

from healthswarm.ingest.formats.lines import iter_lines, max_line_bytes
from healthswarm.ingest.formats.timestamps import from_epoch
from healthswarm.model import Event, Reject

_RECORD = re.compile(r"(?:node=(\S+) )?type=([A-Z0-9_]+) msg=audit\((\d+)\.(\d+):(\d+)\):\s*(.*)$", re.S)
_KV = re.compile(r"""([A-Za-z_][\w\-]*)=("[^"]*"|'[^']*'|\S*)""")
_ARG = re.compile(r"^a\d+$")
_HEX = re.compile(r"^(?:[0-9A-F]{2})+$")
_SNIFF = re.compile(rb"type=[A-Z0-9_]+ msg=audit\(\d+\.\d+:\d+\)")
_ENCODED = {
    "proctitle", "name", "exe", "comm", "cwd", "cmd", "acct", "data", "path", "old", "new", "dir", "watch",
    "key", "ocomm", "vm", "vm-ctx", "img-ctx", "grp", "new_group", "new_user", "id", "root_dir", "sw",
    "device", "old-chardev", "new-chardev", "terminal",
}  # fmt: skip
_UNSET = "4294967295"
# x86_64 syscall numbers seen in security rules (audit.rules / Sigma auditd rules)
_SYSCALLS = {
    "0": "read", "1": "write", "2": "open", "4": "stat", "9": "mmap", "10": "mprotect", "21": "access",
    "41": "socket", "42": "connect", "43": "accept", "44": "sendto", "49": "bind", "50": "listen",
    "56": "clone", "57": "fork", "58": "vfork", "59": "execve", "62": "kill", "76": "truncate",
    "82": "rename", "83": "mkdir", "84": "rmdir", "86": "link", "87": "unlink", "88": "symlink",
    "90": "chmod", "91": "fchmod", "92": "chown", "101": "ptrace", "105": "setuid", "106": "setgid",
    "113": "setreuid", "117": "setresuid", "157": "prctl", "165": "mount", "166": "umount2",
    "175": "init_module", "176": "delete_module", "188": "setxattr", "257": "openat", "263": "unlinkat",
    "264": "renameat", "268": "fchmodat", "288": "accept4", "313": "finit_module", "316": "renameat2",
    "322": "execveat",
}  # fmt: skip
_ARCH_X86_64 = "c000003e"


def _value(key: str, raw: str, execve: bool = False) -> str | None:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    if raw == "(null)":
        return None
    # EXECVE arguments are encoded like strings; SYSCALL's a0-a3 are register values, never decoded
    if (key.lower() in _ENCODED or (execve and _ARG.match(key))) and _HEX.match(raw):
        decoded = bytes.fromhex(raw)
        if key == "proctitle":
            decoded = decoded.rstrip(b"\x00").replace(b"\x00", b" ")
        return decoded.decode("utf-8", "backslashreplace")
    return raw


def parse_fields(text: str, kind: str = "") -> dict[str, Any]:
    """key=value pairs of one record body, nested msg='…' and enriched (after 0x1D) pairs merged."""
    body, _, enriched = text.partition("\x1d")
    values: dict[str, Any] = {}
    execve = kind == "EXECVE"
    for key, raw in _KV.findall(body):
        if key == "msg" and raw[:1] == "'":
            for inner_key, inner_raw in _KV.findall(raw[1:-1]):
                values.setdefault(inner_key, _value(inner_key, inner_raw))
            continue
        values[key] = _value(key, raw, execve)
    for key, raw in _KV.findall(enriched):
        values.setdefault(key, _value(key, raw))
    return values


class _Group:
    def __init__(self, serial: str, node: str | None, seconds: str, millis: str) -> None:
        self.serial, self.node, self.seconds, self.millis = serial, node, seconds, millis
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.lines: list[str] = []
        self.first_line = 0
        self.position = 0


class AuditdFormat:
    name: ClassVar[str] = "auditd"
    description: ClassVar[str] = "Linux audit logs (auditd)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        lines = [line for line in head.split(b"\n")[:21] if line.strip()]
        if len(lines) > 1 and not head.endswith(b"\n"):
            lines = lines[:-1]
        if not lines:
            return 0.0
        matched = sum(1 for line in lines if _SNIFF.search(line))
        return 0.95 if matched / len(lines) >= 0.8 else 0.0

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        group: _Group | None = None
        for line, position, number in iter_lines(stream, start):
            if line is None:
                if group:
                    yield self._event(group, source)
                    group = None
                yield self._reject(source, position, number, f"line longer than {max_line_bytes()} bytes", b"")
                continue
            if not line.strip():
                continue
            text = line.decode("utf-8", "backslashreplace")
            match = _RECORD.search(text)
            if match is None:
                if group:
                    yield self._event(group, source)
                    group = None
                yield self._reject(
                    source, position, number,
                    "not an audit record: expected 'type=TYPE msg=audit(SECONDS.MILLIS:SERIAL): key=value …', "
                    f"found {text[:40]!r}",
                    line,
                )  # fmt: skip
                continue
            node, kind, seconds, millis, serial, body = match.groups()
            if group is not None and (group.serial != serial or group.seconds != seconds or group.node != node):
                yield self._event(group, source)
                group = None
            if group is None:
                group = _Group(serial, node, seconds, millis)
                group.first_line = number
            group.records.append((kind, parse_fields(body, kind)))
            group.lines.append(text[match.start() :])
            group.position = position
            if kind == "EOE":
                yield self._event(group, source)
                group = None
        if group:
            yield self._event(group, source)

    def _reject(self, source: str, position: int, record: int, reason: str, raw: bytes) -> Reject:
        return Reject(source=source, position=position, reason=reason, raw=raw, format=self.name, record=record)

    def _event(self, group: _Group, source: str) -> Event | Reject:
        raw = "\n".join(group.lines)
        timestamp = from_epoch(int(group.seconds) + int(group.millis) / 10 ** len(group.millis))
        if timestamp is None:
            return self._reject(
                source, group.position, group.first_line, f"audit time {group.seconds}.{group.millis} out of range",
                raw.encode(),
            )  # fmt: skip
        return Event(
            timestamp=timestamp, fields=group_fields(group.records, group.serial, group.node), original=raw,
            source=source, record=group.first_line, position=group.position,
        )  # fmt: skip


def group_fields(records: list[tuple[str, dict[str, Any]]], serial: str, node: str | None) -> dict[str, Any]:
    kinds = [kind for kind, _ in records]
    primary_kind, primary = next(((k, v) for k, v in records if k not in ("EOE",)), records[0])
    fields: dict[str, Any] = {
        "event.kind": "event",
        "event.module": "auditd",
        "observer.type": "auditd",
        "auditd.sequence": int(serial),
        "auditd.record_type": primary_kind,
        "auditd.record_types": kinds,
        "auditd.data": primary,
    }
    merged: dict[str, Any] = {}
    for _, values in records:
        for key, value in values.items():
            merged.setdefault(key, value)

    def put(name: str, value: Any) -> None:
        if value is not None and value != "" and value != "?":
            fields[name] = value

    if node:
        fields["host.name"] = node
    if primary_kind == "SYSCALL":
        syscall = merged.get("SYSCALL") or (
            _SYSCALLS.get(str(primary.get("syscall"))) if primary.get("arch") in (_ARCH_X86_64, None) else None
        )
        fields["event.action"] = syscall or f"syscall-{primary.get('syscall')}"
        put("auditd.syscall", primary.get("syscall"))
        put("auditd.arch", primary.get("arch"))
    else:
        fields["event.action"] = primary_kind.lower()
    success, result = merged.get("success"), merged.get("res")
    if success in ("yes", "no"):
        fields["event.outcome"] = "success" if success == "yes" else "failure"
        fields["auditd.result"] = success
    elif result is not None:
        fields["auditd.result"] = result
        if result in ("success", "1", "yes"):
            fields["event.outcome"] = "success"
        elif result in ("failed", "failure", "0", "no"):
            fields["event.outcome"] = "failure"
    put("user.id", merged.get("uid"))
    if merged.get("auid") != _UNSET:
        put("user.audit.id", merged.get("auid"))
    put("user.effective.id", merged.get("euid"))
    put("group.id", merged.get("gid"))
    put("user.name", merged.get("UID") or merged.get("acct"))
    put("process.executable", merged.get("exe"))
    put("process.name", merged.get("comm"))
    for name, key in (("process.pid", "pid"), ("process.parent.pid", "ppid")):
        value = merged.get(key)
        if isinstance(value, str) and value.isdigit():
            fields[name] = int(value)
    put("process.working_directory", merged.get("cwd"))
    for kind, values in records:
        if kind == "PROCTITLE":
            put("process.title", values.get("proctitle"))
        elif kind == "EXECVE":
            count = int(values["argc"]) if str(values.get("argc", "")).isdigit() else 0
            args = [str(values.get(f"a{i}", "")) for i in range(count)]
            if args:
                fields["process.args"] = args
                fields["process.args_count"] = len(args)
    paths = [values for kind, values in records if kind == "PATH"]
    if paths:
        fields["auditd.paths"] = paths
        named = [p for p in paths if p.get("name") and p.get("nametype") != "PARENT"] or paths
        put("file.path", named[0].get("name"))
    address = merged.get("addr")
    if address and address != "?":
        fields["source.address"] = address
        with contextlib.suppress(ValueError):  # a host name, not an address
            fields["source.ip"] = str(ipaddress.ip_address(address))
    key = merged.get("key")
    if key:
        fields["auditd.key"] = key
        fields["tags"] = [key]
    summary = f"audit {primary_kind} {fields['event.action']}"
    if "process.executable" in fields:
        summary += f" exe={fields['process.executable']}"
    if "user.id" in fields:
        summary += f" uid={fields['user.id']}"
    fields["message"] = summary
    return fields


FORMAT = AuditdFormat()
