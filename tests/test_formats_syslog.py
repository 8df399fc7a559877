"""Host text formats: syslog (RFC 5424, RFC 3164, rsyslog files) and Linux auditd."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

from healthswarm.ingest.formats.auditd import FORMAT as AUDITD
from healthswarm.ingest.formats.syslog import FORMAT as SYSLOG
from healthswarm.model import Event, Reject


def parse(fmt, data: bytes, start: int = 0) -> list[Event | Reject]:
    return list(fmt.parse(io.BytesIO(data), "test", start))


def write(tmp_path: Path, name: str, data: bytes, mtime: datetime) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


# RFC 5424 section 6.5 examples, RFC 3164 section 5.4 examples, and lines as rsyslog writes them
RFC5424 = [
    b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
    b"\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
    b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
    b'eventSource="Application" eventID="1011"] \xef\xbb\xbfAn application event log entry...',
    b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
    b'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',
]
RFC3164 = [
    b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
]
RSYSLOG = [
    b"Mar  1 06:25:01 ehr-db01 CRON[12345]: pam_unix(cron:session): session opened for user root by (uid=0)",
    b"Dec 31 23:59:59 ehr-db01 sshd[2201]: Failed password for invalid user admin from 203.0.113.9 port 40022 ssh2",
    b"2026-03-01T10:00:00.123456+01:00 pacs01 kernel: [12345.678] e1000e: eth0 NIC Link is Up",
]


def test_rfc5424() -> None:
    items = parse(SYSLOG, b"\n".join(RFC5424) + b"\n")
    assert all(isinstance(i, Event) for i in items) and len(items) == 4
    su, myproc, sd, sd_only = (i.fields for i in items)
    assert su["log.syslog.facility.name"] == "auth" and su["log.syslog.severity.code"] == 2
    assert su["event.severity"] == 2 and su["log.syslog.version"] == 1
    assert su["host.hostname"] == "mymachine.example.com" and su["process.name"] == "su"
    assert su["log.syslog.msgid"] == "ID47" and "log.syslog.procid" not in su
    assert su["message"] == "'su root' failed for lonvick on /dev/pts/8"  # BOM removed
    assert items[0].timestamp == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)
    assert myproc["process.pid"] == 8710 and myproc["log.syslog.facility.name"] == "local4"
    assert items[1].timestamp == datetime(2003, 8, 24, 12, 14, 15, 3, tzinfo=UTC)
    assert sd["log.syslog.structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}
    }
    assert sd["message"] == "An application event log entry..."
    assert set(sd_only["log.syslog.structured_data"]) == {"exampleSDID@32473", "examplePriority@32473"}
    assert sd_only["message"] == ""
    assert items[0].original == RFC5424[0].decode()


def test_rfc3164_and_rsyslog_year_inference(tmp_path: Path) -> None:
    reference = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    path = write(tmp_path, "messages", b"\n".join(RFC3164 + RSYSLOG) + b"\n", reference)
    with path.open("rb") as stream:
        items = list(SYSLOG.parse(stream, str(path)))
    assert all(isinstance(i, Event) for i in items)
    su, bfg, cron, sshd, kernel = items
    # file written 2026-01-15: Oct 11 and Mar 1 and Dec 31 are later in the calendar, so 2025
    assert su.timestamp == datetime(2025, 10, 11, 22, 14, 15, tzinfo=UTC)
    assert sshd.timestamp == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert cron.timestamp.year == 2025
    assert su.fields["host.hostname"] == "mymachine" and su.fields["process.name"] == "su"
    assert bfg.fields["host.hostname"] == "10.0.0.99" and bfg.fields["message"] == "Use the BFG!"
    assert "process.name" not in bfg.fields
    assert cron.fields["process.name"] == "CRON" and cron.fields["process.pid"] == 12345
    assert "log.syslog.priority" not in cron.fields  # a file line has no PRI
    assert sshd.fields["message"].startswith("Failed password for invalid user admin")
    assert kernel.timestamp == datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
    assert kernel.fields["host.hostname"] == "pacs01" and kernel.fields["process.name"] == "kernel"
    # the same file read again gives the same years (the reference is the file, not the clock)
    with path.open("rb") as stream:
        assert [i.timestamp for i in SYSLOG.parse(stream, str(path))] == [i.timestamp for i in items]
    later = write(
        tmp_path, "messages.1", b"\n".join(RSYSLOG[:2]) + b"\n", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    )
    with later.open("rb") as stream:
        assert [i.timestamp.year for i in SYSLOG.parse(stream, str(later))] == [2026, 2026]


def test_syslog_resume_and_bad_lines() -> None:
    lines = [
        RFC5424[0],
        b"this is not syslog",
        RFC3164[0],
        b"<999>1 2026-01-01T00:00:00Z h a - - - x",
        b"<13>1 - host app - - - no time",
        b"\xff\xfe\x00\x01",
        RFC5424[1] + b"\xe9t\xe9",
    ]
    data = b"\n".join(lines) + b"\n"
    items = parse(SYSLOG, data)
    assert [type(i).__name__ for i in items] == ["Event", "Reject", "Event", "Reject", "Reject", "Reject", "Event"]
    assert "not a syslog line" in items[1].reason and items[1].raw == b"this is not syslog"
    assert "PRI <999>" in items[3].reason
    assert "TIMESTAMP '-'" in items[4].reason
    assert items[-1].fields["tags"] == ["invalid-utf8"] and "\\xe9" in items[-1].original
    assert items[-1].position == len(data)
    resumed = parse(SYSLOG, data, start=items[2].position)
    assert [i.position for i in resumed] == [i.position for i in items[3:]]


def test_syslog_sniff() -> None:
    assert SYSLOG.sniff(b"\n".join(RFC5424 + RFC3164 + RSYSLOG) + b"\n") > 0.5
    assert SYSLOG.sniff(b"hello\nworld\n") == 0.0


# -- auditd ---------------------------------------------------------------------------------------

# Red Hat Security Guide, "Understanding Audit Log Files" (RHEL 7), plus user-space and EXECVE records
AUDIT = b"".join(
    line + b"\n"
    for line in [
        b"type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 success=no exit=-13 "
        b"a0=7fffd19c5592 a1=0 a2=7fffd19c4b50 a3=a items=1 ppid=2686 pid=3538 auid=1000 uid=1000 "
        b"gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 "
        b'comm="cat" exe="/bin/cat" subj=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023 '
        b'key="sshd_config"',
        b'type=CWD msg=audit(1364481363.243:24287):  cwd="/home/shadowman"',
        b'type=PATH msg=audit(1364481363.243:24287): item=0 name="/etc/ssh/sshd_config" inode=409248 '
        b"dev=fd:00 mode=0100600 ouid=0 ogid=0 rdev=00:00 obj=system_u:object_r:etc_t:s0 "
        b"nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0",
        b"type=PROCTITLE msg=audit(1364481363.243:24287): proctitle=636174002F6574632F7373682F737368645F636F6E666967",
        b"node=ehr-db01 type=USER_LOGIN msg=audit(1700000000.123:901): pid=4321 uid=0 "
        b"auid=4294967295 ses=4294967295 subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=login "
        b'acct="root" exe="/usr/sbin/sshd" hostname=? addr=203.0.113.7 terminal=ssh '
        b'res=failed\'\x1dUID="root" AUID="unset"',
        b"type=SYSCALL msg=audit(1700000100.001:902): arch=c000003e syscall=59 success=yes exit=0 "
        b"a0=55d0 a1=55d1 a2=55d2 a3=0 items=2 ppid=100 pid=200 auid=1001 uid=0 gid=0 euid=0 suid=0 "
        b'fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts1 ses=3 comm="bash" exe="/usr/bin/bash" '
        b'key=(null)\x1dARCH=x86_64 SYSCALL=execve AUID="alice" UID="root"',
        b'type=EXECVE msg=audit(1700000100.001:902): argc=3 a0="bash" a1="-c" a2=6563686F2068656C6C6F20776F726C64',
        b"type=EOE msg=audit(1700000100.001:902):",
    ]
)


def test_auditd_records_grouped_and_decoded() -> None:
    items = parse(AUDITD, AUDIT)
    assert [type(i).__name__ for i in items] == ["Event", "Event", "Event"]
    cat, login, bash = items
    f = cat.fields
    assert f["auditd.sequence"] == 24287 and f["auditd.record_types"] == ["SYSCALL", "CWD", "PATH", "PROCTITLE"]
    assert f["event.action"] == "open" and f["event.outcome"] == "failure"
    assert (f["user.id"], f["user.audit.id"], f["process.pid"], f["process.parent.pid"]) == ("1000", "1000", 3538, 2686)
    assert f["process.executable"] == "/bin/cat" and f["process.name"] == "cat"
    assert f["process.title"] == "cat /etc/ssh/sshd_config"
    assert f["process.working_directory"] == "/home/shadowman" and f["file.path"] == "/etc/ssh/sshd_config"
    assert f["auditd.key"] == "sshd_config" and f["tags"] == ["sshd_config"]
    assert cat.timestamp == datetime(2013, 3, 28, 14, 36, 3, 243000, tzinfo=UTC)
    assert cat.original.count("\n") == 3 and cat.original.startswith("type=SYSCALL")
    g = login.fields
    assert g["host.name"] == "ehr-db01" and g["event.action"] == "user_login" and g["event.outcome"] == "failure"
    assert g["user.name"] == "root" and g["source.ip"] == "203.0.113.7"
    assert "user.audit.id" not in g  # 4294967295 is "unset"
    h = bash.fields
    assert h["event.action"] == "execve" and h["process.args"] == ["bash", "-c", "echo hello world"]
    assert h["user.audit.id"] == "1001" and h["user.name"] == "root" and "auditd.key" not in h
    assert h["auditd.data"]["a0"] == "55d0"  # register values are not decoded
    assert [i.position for i in items] == [
        AUDIT.index(b"node=ehr"),
        AUDIT.index(b"type=SYSCALL msg=audit(1700000100"),
        len(AUDIT),
    ]


def test_auditd_resume_bad_lines_and_syslog_prefix() -> None:
    items = parse(AUDITD, AUDIT)
    resumed = parse(AUDITD, AUDIT, start=items[0].position)
    assert [i.position for i in resumed] == [i.position for i in items[1:]]
    relayed = b"Mar  1 10:00:00 ehr-db01 audispd: " + AUDIT.splitlines()[4] + b"\n"
    (event,) = parse(AUDITD, relayed)
    assert isinstance(event, Event) and event.fields["auditd.sequence"] == 901
    bad = b"type=SYSCALL msg=audit(oops): arch=x\n\x00\x01\x02\n" + AUDIT.splitlines()[1] + b"\n"
    out = parse(AUDITD, bad)
    assert [type(i).__name__ for i in out] == ["Reject", "Reject", "Event"]
    assert "expected 'type=TYPE msg=audit(SECONDS.MILLIS:SERIAL)" in out[0].reason
    assert AUDITD.sniff(AUDIT) > 0.9 and SYSLOG.sniff(AUDIT) == 0.0
    assert AUDITD.sniff(b"\n".join(RSYSLOG)) == 0.0
