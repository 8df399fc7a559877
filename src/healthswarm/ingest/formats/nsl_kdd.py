"""NSL-KDD connection records (KDDTrain+/KDDTest+ text files): 41 features, the label, the difficulty.

Rows are comma-separated without a header (a header row starting `duration,` is skipped, not a
record). 42 columns (no difficulty, as in KDD'99-style copies; a trailing `.` on the label is
dropped) are accepted too.

ECS: `network.transport` (protocol_type), `network.protocol` (service), `event.duration` (seconds
→ nanoseconds), `source.bytes`/`destination.bytes`, `event.action` (the TCP status flag), the
ground-truth label as `flow.label` and `nsl_kdd.difficulty` (both for evaluation, never features).
`original` is the row, feature name → text.

Time: the data set has none (records are shuffled connection summaries of a 1998 capture). Every
event gets the Unix epoch: deterministic (reading the file twice gives the same events, so the
idempotency keys and any replay agree), and plainly not a real time. Not the ingest time (differs at
every read) and not epoch + row index (it would invent an order and rates that time-window
detectors would take for real). The row number is `Event.record`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, ClassVar

from healthswarm.ingest.formats.rows import BOM, csv_rows
from healthswarm.model import Event, Reject

NAME = "nsl-kdd"
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)

FEATURES = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land", "wrong_fragment", "urgent",
    "hot", "num_failed_logins", "logged_in", "num_compromised", "root_shell", "su_attempted", "num_root",
    "num_file_creations", "num_shells", "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login",
    "count", "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate", "same_srv_rate",
    "diff_srv_rate", "srv_diff_host_rate", "dst_host_count", "dst_host_srv_count", "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate", "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)
COLUMNS = (*FEATURES, "label", "difficulty")
_TRANSPORTS = frozenset(("tcp", "udp", "icmp"))
_FLAGS = frozenset(("SF", "S0", "S1", "S2", "S3", "REJ", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH"))


class NslKddFormat:
    name: ClassVar[str] = NAME
    description: ClassVar[str] = "NSL-KDD connection records (41 features, label, difficulty; no header)"

    def sniff(self, head: bytes, filename: str = "") -> float:
        if head.startswith(BOM):
            head = head[3:]
        lines = [line for line in head.split(b"\n")[:6] if line.strip()]
        if len(lines) > 1:
            lines = lines[:-1] if not head.endswith(b"\n") else lines  # a cut last line proves nothing
        if lines and lines[0].startswith(b"duration,protocol_type"):
            return 0.95
        good = 0
        for line in lines:
            cells = line.rstrip(b"\r").split(b",")
            if (
                len(cells) in (42, 43)
                and cells[1] in (b"tcp", b"udp", b"icmp")
                and cells[3].decode("ascii", "replace") in _FLAGS
                and cells[0].isdigit()
            ):
                good += 1
        return 0.9 if lines and good == len(lines) else 0.0

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        first = start == 0
        for item in csv_rows(stream, source, start, NAME, None):
            if type(item) is not tuple:
                first = False
                yield item
                continue
            cells, line, position, record = item
            if first and cells[0] == "duration" and len(cells) in (42, 43):
                first = False
                continue  # a header row some copies add: names, not a record
            first = False
            if len(cells) not in (42, 43):
                reason = f"line {record}: {len(cells)} columns, expected 43 (41 features, label, difficulty)"
                yield Reject(source, position, reason, line, NAME, record)
                continue
            try:
                duration = int(float(cells[0]) * 1_000_000_000)
                src_bytes, dst_bytes = int(cells[4]), int(cells[5])
                difficulty = int(cells[42]) if len(cells) == 43 else None
            except (ValueError, OverflowError):
                reason = f"line {record}: duration, src_bytes, dst_bytes and difficulty must be numbers"
                yield Reject(source, position, reason, line, NAME, record)
                continue
            label = cells[41].strip().rstrip(".")
            f: dict[str, Any] = {
                "event.kind": "event", "event.module": "nsl_kdd", "event.dataset": "nsl_kdd.connection",
                "observer.type": "nsl-kdd", "event.category": ["network"], "event.type": ["connection"],
                "network.protocol": cells[2], "event.action": cells[3],
                "event.duration": duration, "source.bytes": src_bytes,
                "destination.bytes": dst_bytes, "network.bytes": src_bytes + dst_bytes, "flow.label": label,
            }
            if cells[1] in _TRANSPORTS:
                f["network.transport"] = cells[1]
            if difficulty is not None:
                f["nsl_kdd.difficulty"] = difficulty
            yield Event(NO_TIME, f, dict(zip(COLUMNS, cells, strict=False)), source, record, position)


FORMAT = NslKddFormat()
