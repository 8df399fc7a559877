"""NSL-KDD connection records (KDDTrain+/KDDTest+ text files): 41 features, the attack name, a difficulty.

No header line; the 43 fields are in the order below. The attack name is mapped to its category
(normal, dos, probe, r2l, u2r) with the usual NSL-KDD table, including the attacks that only the test
file has. `difficulty` (how many of 21 learners got the record right) is a label artefact, never a feature.
NSL-KDD has no addresses or times: only stratified splits are possible on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from healthswarm.detect.learn.card import DataFile
from healthswarm.detect.learn.datasets.base import LabelledData, numeric_columns, read_rows
from healthswarm.detect.learn.table import Table
from healthswarm.errors import InputError, Location, Problem

FEATURES = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land", "wrong_fragment", "urgent",
    "hot", "num_failed_logins", "logged_in", "num_compromised", "root_shell", "su_attempted", "num_root",
    "num_file_creations", "num_shells", "num_access_files", "num_outbound_cmds", "is_host_login",
    "is_guest_login", "count", "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count", "dst_host_srv_count",
    "dst_host_same_srv_rate", "dst_host_diff_srv_rate", "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate", "dst_host_serror_rate", "dst_host_srv_serror_rate", "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate",
)
COLUMNS = (*FEATURES, "attack", "difficulty")
CATEGORICAL = ("protocol_type", "service", "flag")
NUMERIC = tuple(f for f in FEATURES if f not in CATEGORICAL)
BENIGN = "normal"

CATEGORY = {
    "normal": "normal",
    **dict.fromkeys(("back", "land", "neptune", "pod", "smurf", "teardrop", "apache2", "mailbomb", "processtable",
                     "udpstorm"), "dos"),
    **dict.fromkeys(("ipsweep", "nmap", "portsweep", "satan", "mscan", "saint"), "probe"),
    **dict.fromkeys(("ftp_write", "guess_passwd", "imap", "multihop", "phf", "spy", "warezclient", "warezmaster",
                     "httptunnel", "named", "sendmail", "snmpgetattack", "snmpguess", "worm", "xlock", "xsnoop"),
                    "r2l"),
    **dict.fromkeys(("buffer_overflow", "loadmodule", "perl", "rootkit", "ps", "sqlattack", "xterm"), "u2r"),
}


class NslKddLayout:
    name = "nsl-kdd"

    def sniff(self, first_line: str) -> bool:
        fields = first_line.split(",")
        return len(fields) == len(COLUMNS) and fields[1] in {"tcp", "udp", "icmp"}

    def read(self, path: Path) -> LabelledData:
        rows = read_rows(path, None)
        if len(rows[0]) != len(COLUMNS):
            raise InputError(Problem(Location(str(path), 1), f"{len(rows[0])} fields", f"{len(COLUMNS)} (NSL-KDD)"))
        index = {name: i for i, name in enumerate(COLUMNS)}
        columns = numeric_columns(path, rows, index, NUMERIC, 1)
        for name in CATEGORICAL:
            columns[name] = np.asarray([r[index[name]].strip() for r in rows], dtype=object)
        names = [r[index["attack"]].strip() for r in rows]
        unknown = sorted({n for n in names if n not in CATEGORY})
        if unknown:
            line = names.index(unknown[0]) + 1
            raise InputError(Problem(Location(str(path), line, "attack"), f"unknown attack name {unknown[0]!r}",
                                     "an NSL-KDD attack name"))
        columns = {name: columns[name] for name in FEATURES}
        return LabelledData(self.name, Table(columns, [f"{path}:{i + 1}" for i in range(len(rows))]),
                            np.asarray([CATEGORY[n] for n in names], dtype=object), BENIGN,
                            details=np.asarray(names, dtype=object), files=[DataFile.of(path, self.name, len(rows))])


LAYOUT = NslKddLayout()
