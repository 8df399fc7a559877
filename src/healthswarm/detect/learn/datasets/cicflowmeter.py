"""CICFlowMeter flows as in CIC-IDS2017 (the corrected 'improved' release): 91 columns including Label.

Identifiers are never features: the row id, Flow ID, the addresses, both ports (a port number names a
service instance or an ephemeral socket, it is identity, not behaviour) and the timestamp. The labels
(`Label`, and `Attempted Category`, which this release derives from the label) are never features
either. `Protocol` is a categorical feature; everything else is numeric.

NaN/inf: CICFlowMeter divides by the flow duration for its rate columns (`Flow Bytes/s`,
`Flow Packets/s`, `Fwd Packets/s`, `Bwd Packets/s`); a zero-duration flow gives NaN or Infinity there.
Those values are replaced by -1 ("rate undefined", a value no real rate takes) and counted in the data's
`repaired` figures. A NaN/inf in any other column is an error naming the file, line and column.
The source IP is kept aside as the host (for host-disjoint splits) and the timestamp as the time
(for time-range splits).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from healthswarm.detect.learn.card import DataFile
from healthswarm.detect.learn.datasets.base import LabelledData, numeric_columns, read_rows
from healthswarm.detect.learn.table import Table
from healthswarm.errors import InputError, Location, Problem

COLUMNS = (
    'id', 'Flow ID', 'Src IP', 'Src Port', 'Dst IP', 'Dst Port', 'Protocol', 'Timestamp', 'Flow Duration',
    'Total Fwd Packet', 'Total Bwd packets', 'Total Length of Fwd Packet', 'Total Length of Bwd Packet',
    'Fwd Packet Length Max', 'Fwd Packet Length Min', 'Fwd Packet Length Mean', 'Fwd Packet Length Std',
    'Bwd Packet Length Max', 'Bwd Packet Length Min', 'Bwd Packet Length Mean', 'Bwd Packet Length Std',
    'Flow Bytes/s', 'Flow Packets/s', 'Flow IAT Mean', 'Flow IAT Std', 'Flow IAT Max', 'Flow IAT Min',
    'Fwd IAT Total', 'Fwd IAT Mean', 'Fwd IAT Std', 'Fwd IAT Max', 'Fwd IAT Min', 'Bwd IAT Total', 'Bwd IAT Mean',
    'Bwd IAT Std', 'Bwd IAT Max', 'Bwd IAT Min', 'Fwd PSH Flags', 'Bwd PSH Flags', 'Fwd URG Flags',
    'Bwd URG Flags', 'Fwd RST Flags', 'Bwd RST Flags', 'Fwd Header Length', 'Bwd Header Length', 'Fwd Packets/s',
    'Bwd Packets/s', 'Packet Length Min', 'Packet Length Max', 'Packet Length Mean', 'Packet Length Std',
    'Packet Length Variance', 'FIN Flag Count', 'SYN Flag Count', 'RST Flag Count', 'PSH Flag Count',
    'ACK Flag Count', 'URG Flag Count', 'CWR Flag Count', 'ECE Flag Count', 'Down/Up Ratio', 'Average Packet Size',
    'Fwd Segment Size Avg', 'Bwd Segment Size Avg', 'Fwd Bytes/Bulk Avg', 'Fwd Packet/Bulk Avg',
    'Fwd Bulk Rate Avg', 'Bwd Bytes/Bulk Avg', 'Bwd Packet/Bulk Avg', 'Bwd Bulk Rate Avg', 'Subflow Fwd Packets',
    'Subflow Fwd Bytes', 'Subflow Bwd Packets', 'Subflow Bwd Bytes', 'FWD Init Win Bytes', 'Bwd Init Win Bytes',
    'Fwd Act Data Pkts', 'Fwd Seg Size Min', 'Active Mean', 'Active Std', 'Active Max', 'Active Min', 'Idle Mean',
    'Idle Std', 'Idle Max', 'Idle Min', 'ICMP Code', 'ICMP Type', 'Total TCP Flow Time', 'Label',
    'Attempted Category',
)
IDENTIFIERS = frozenset({"id", "Flow ID", "Src IP", "Src Port", "Dst IP", "Dst Port", "Timestamp"})
LABELS = frozenset({"Label", "Attempted Category"})
CATEGORICAL = ("Protocol",)
RATE_COLUMNS = frozenset({"Flow Bytes/s", "Flow Packets/s", "Fwd Packets/s", "Bwd Packets/s"})
NUMERIC = tuple(c for c in COLUMNS if c not in IDENTIFIERS | LABELS and c not in CATEGORICAL)
FEATURES = (*NUMERIC, *CATEGORICAL)
BENIGN = "BENIGN"


def _time(text: str) -> float:
    text = text.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"):
        try:
            return datetime.strptime(text, fmt).timestamp()
        except ValueError:
            continue
    return float("nan")


class CicFlowMeterLayout:
    name = "cicflowmeter"

    def sniff(self, first_line: str) -> bool:
        header = {h.strip() for h in first_line.split(",")}
        return "Label" in header and bool({"Flow ID", "Flow Duration"} & header)

    def read(self, path: Path) -> LabelledData:
        rows = read_rows(path, COLUMNS)
        index = {name: i for i, name in enumerate(COLUMNS)}
        repaired: dict[str, int] = {}
        columns = numeric_columns(path, rows, index, NUMERIC, 2, RATE_COLUMNS, repaired)
        columns["Protocol"] = np.asarray([r[index["Protocol"]].strip() for r in rows], dtype=object)
        labels = np.asarray([r[index["Label"]].strip() for r in rows], dtype=object)
        empty = np.flatnonzero(labels == "")
        if len(empty):
            raise InputError(Problem(Location(str(path), int(empty[0]) + 2, "Label"), "empty label", "a class name"))
        times = np.asarray([_time(r[index["Timestamp"]]) for r in rows])
        origin = [f"{path}:{i + 2}" for i in range(len(rows))]
        return LabelledData(self.name, Table(columns, origin), labels, BENIGN,
                            hosts=np.asarray([r[index["Src IP"]].strip() for r in rows], dtype=object),
                            peers=np.asarray([f"{r[index['Dst IP']].strip()}:{r[index['Dst Port']].strip()}"
                                              for r in rows], dtype=object),
                            times=times, files=[DataFile.of(path, self.name, len(rows))], repaired=repaired)


LAYOUT = CicFlowMeterLayout()
