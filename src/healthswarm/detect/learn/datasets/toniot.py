"""TON_IoT device telemetry (Train_Test_IoT_<device>.csv): date, time, the device's readings, label, type.

The device is recognised by its reading columns. Readings become numbers: switch-like values
(`true`/`false`, `on`/`off`, `open`/`closed`, `high`/`low`, with any surrounding blanks) map to 1/0. The
files mix spellings (`0` and `false  `) by collection period, so keeping the raw text would let a model
learn the spelling instead of the behaviour. Rows are ordered by time (stable), since rate-of-change and
replay features need the sequence; `time` (epoch seconds) is carried for that and is never a feature.
Labels: `normal` or `attack` (`label` 0/1); the attack `type` is kept as the detail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from healthswarm.detect.learn.card import DataFile
from healthswarm.detect.learn.datasets.base import LabelledData, read_rows
from healthswarm.detect.learn.table import Table
from healthswarm.errors import InputError, Location, Problem

DEVICES: dict[str, tuple[str, ...]] = {
    "fridge": ("fridge_temperature", "temp_condition"),
    "gps-tracker": ("latitude", "longitude"),
    "garage-door": ("door_state", "sphone_signal"),
    "modbus": ("FC1_Read_Input_Register", "FC2_Read_Discrete_Value", "FC3_Read_Holding_Register", "FC4_Read_Coil"),
    "motion-light": ("motion_status", "light_status"),
    "thermostat": ("current_temperature", "thermostat_status"),
    "weather": ("temperature", "pressure", "humidity"),
}
SWITCH = {"true": 1.0, "false": 0.0, "on": 1.0, "off": 0.0, "open": 1.0, "closed": 0.0, "high": 1.0, "low": 0.0}
BENIGN = "normal"


def device_of(header: list[str]) -> str | None:
    readings = tuple(h.strip() for h in header[2:-2])
    return next((d for d, cols in DEVICES.items() if cols == readings), None)


def reading(text: str) -> float:
    """A TON_IoT reading as a number: switch words (any case, any blanks) as 1/0, else the float."""
    text = text.strip().lower()
    return SWITCH[text] if text in SWITCH else float(text)


def _time(date: str, clock: str) -> float:
    return datetime.strptime(f"{date.strip()} {clock.strip()}", "%d-%b-%y %H:%M:%S").replace(tzinfo=UTC).timestamp()


class TonIotLayout:
    name = "ton-iot"

    def sniff(self, first_line: str) -> bool:
        header = [h.strip() for h in first_line.split(",")]
        return header[:2] == ["date", "time"] and header[-2:] == ["label", "type"]

    def read(self, path: Path) -> LabelledData:
        header = [h.strip() for h in read_rows_header(path)]
        device = device_of(header)
        if device is None:
            raise InputError(Problem(Location(str(path), 1), "reading columns " + ", ".join(header[2:-2]),
                                     "the columns of one TON_IoT device: "
                                     + "; ".join(f"{d}: {', '.join(c)}" for d, c in DEVICES.items())))
        readings = DEVICES[device]
        rows = read_rows(path, ["date", "time", *readings, "label", "type"])
        values = np.empty((len(rows), len(readings)))
        times = np.empty(len(rows))
        problems: list[Problem] = []
        for i, row in enumerate(rows):
            try:
                times[i] = _time(row[0], row[1])
            except ValueError:
                problems.append(Problem(Location(str(path), i + 2, "date/time"), f"{row[0]!r} {row[1]!r}",
                                        "a date like 25-Apr-19 and a time like 19:19:40"))
            for j, name in enumerate(readings):
                try:
                    values[i, j] = reading(row[2 + j])
                except ValueError:
                    problems.append(Problem(Location(str(path), i + 2, name), f"{row[2 + j]!r} is not a reading",
                                            "a number or one of " + "/".join(SWITCH)))
            if not np.isfinite(values[i]).all() and not problems:
                problems.append(Problem(Location(str(path), i + 2), "reading is NaN or infinite", "a finite number"))
            if len(problems) >= 20:
                break
        labels = np.asarray([r[-2].strip() for r in rows], dtype=object)
        bad = np.flatnonzero(~np.isin(labels, ["0", "1"]))
        if len(bad):
            problems.append(Problem(Location(str(path), int(bad[0]) + 2, "label"), repr(labels[bad[0]]), "0 or 1"))
        if problems:
            raise InputError(problems)
        order = np.argsort(times, kind="stable")
        columns: dict[str, np.ndarray] = {"device": np.full(len(rows), device, dtype=object), "time": times[order]}
        for j, name in enumerate(readings):
            columns[name] = values[order, j]
        origin = [f"{path}:{i + 2}" for i in order]
        return LabelledData(self.name, Table(columns, origin),
                            np.where(labels[order] == "1", "attack", BENIGN).astype(object), BENIGN,
                            hosts=np.full(len(rows), device, dtype=object), times=times[order],
                            details=np.asarray([rows[i][-1].strip() for i in order], dtype=object),
                            files=[DataFile.of(path, self.name, len(rows))],
                            strata=np.asarray([f"{device}/{lab}" for lab in labels[order]], dtype=object))


def read_rows_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", errors="replace") as stream:
        return stream.readline().rstrip("\r\n").split(",")


LAYOUT = TonIotLayout()
