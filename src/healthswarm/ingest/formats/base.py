"""The contract every input format follows: `sniff()` to recognise it, `parse()` to read it.

A format turns a byte stream into `Event`s (normalised to ECS field names, UTC timestamps, the
original record kept) and `Reject`s (what could not be parsed, with where and why). It never raises
for bad input: whatever the bytes, it yields and goes on (hypothesis tests check this). Formats do
not touch the store, the bus or the inventory; the ingest pipeline resolves assets, assigns
idempotency keys and commits checkpoints.

What goes in `Event.original`:
- JSON formats (Suricata EVE, Zeek JSON, FHIR, IoMT JSON): the parsed object as written.
- Windows events (EVTX, evtx_dump / winlogbeat / Security-Datasets JSON): one flat dict with the
  Windows field names Sigma rules use: System fields (`EventID`, `Channel`, `Provider_Name`,
  `Computer`, `EventRecordID`, ...) and every EventData / UserData item by its `Name`.
- Column formats (Zeek TSV, CSV flows, TON_IoT): a dict of column name to text value.
- Text formats (syslog, auditd, HL7 v2): the raw text of the record.

Resuming: `parse(stream, source, start)` yields only records whose `position` is greater than
`start`, where `position` is the byte offset just past the record for text formats and the record
ordinal for container formats (EVTX, archives). `start=0` reads everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, ClassVar, Protocol, runtime_checkable

from healthswarm.model import Event, Reject

SNIFF_BYTES = 64 * 1024


@runtime_checkable
class Format(Protocol):
    name: ClassVar[str]
    description: ClassVar[str]

    def sniff(self, head: bytes, filename: str = "") -> float:
        """Confidence from 0 to 1 that `head` (the first bytes, up to SNIFF_BYTES) is this format."""
        ...

    def parse(self, stream: BinaryIO, source: str, start: int = 0) -> Iterator[Event | Reject]:
        """Events and rejects from `stream`, resuming after position `start`."""
        ...
