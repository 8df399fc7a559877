from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from healthswarm.errors import InputError
from healthswarm.respond.cases import Case
from healthswarm.respond.deadlines import Months, deadlines, format_left, warnings
from healthswarm.respond.drafts import data_subjects, draft
from respond_helpers import T0, case_of, ward_inventory


def _by_id(case: Case, now: datetime, *regimes: str) -> dict:
    return {d.rule.id: d for d in deadlines(case, now, regimes or ("gdpr", "nis2", "hipaa"))}


def test_clocks_start_at_awareness() -> None:
    case = case_of(["ehr-1"])  # aware at T0 = 2026-03-02 09:00 UTC
    items = _by_id(case, T0 + timedelta(hours=10))
    assert items["gdpr-33"].due == T0 + timedelta(hours=72)
    assert items["gdpr-33"].left == timedelta(hours=62) and items["gdpr-33"].status == "ok"
    assert items["nis2-early-warning"].due == T0 + timedelta(hours=24)
    assert items["nis2-notification"].due == T0 + timedelta(hours=72)
    assert items["nis2-final-report"].due == datetime(2026, 4, 5, 9, 0, tzinfo=UTC)  # one month after 5 March
    assert items["hipaa-individuals"].due == T0 + timedelta(days=60)
    assert items["gdpr-34"].due is None and items["gdpr-34"].status == "undue-delay"


def test_warning_before_and_overdue_after() -> None:
    case = case_of([])
    early = _by_id(case, T0 + timedelta(hours=17, minutes=59), "nis2")["nis2-early-warning"]
    assert early.status == "ok"
    late = _by_id(case, T0 + timedelta(hours=18, minutes=1), "nis2")["nis2-early-warning"]
    assert late.status == "warning" and format_left(late.left) == "5 h 59 min"
    lapsed = _by_id(case, T0 + timedelta(hours=25), "nis2")
    assert lapsed["nis2-early-warning"].status == "overdue"
    assert format_left(lapsed["nis2-early-warning"].left) == "1 h overdue"
    # the words every face uses for a duration (model.words.span), not a format of its own
    assert [format_left(timedelta(days=3)), format_left(timedelta(days=-1, hours=-18))] == ["3 d", "1 d 18 h overdue"]
    lines = warnings(list(lapsed.values()))
    assert len(lines) == 1 and "lapsed" in lines[0] and "NIS2 Art. 23(4)(a)" in lines[0]


def test_met_deadlines_do_not_warn() -> None:
    case = case_of([], notified={"gdpr-33": (T0 + timedelta(hours=30)).isoformat()})
    item = _by_id(case, T0 + timedelta(hours=80), "gdpr")["gdpr-33"]
    assert item.status == "met" and warnings([item]) == []


def test_calendar_month_clamps_to_the_month_end() -> None:
    assert datetime(2026, 1, 31, 12, tzinfo=UTC) + Months(1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert datetime(2026, 12, 15, tzinfo=UTC) + Months(1) == datetime(2027, 1, 15, tzinfo=UTC)


def test_clock_skew_and_unknown_regime_are_clear_errors() -> None:
    case = case_of([])
    with pytest.raises(InputError, match="clock skew"):
        deadlines(case, T0 - timedelta(hours=1))
    with pytest.raises(InputError, match="unknown regime 'ccpa'"):
        deadlines(case, T0, ("ccpa",))
    with pytest.raises(InputError, match="no time zone"):
        deadlines(case, T0.replace(tzinfo=None))


def test_data_subjects_are_what_the_incident_touched_not_what_the_systems_hold() -> None:
    assets = {a.id: a for a in ward_inventory().assets}
    subjects, records, categories = data_subjects(case_of(["ehr-1", "ws-1"], patients=12), assets)
    assert (subjects, records) == (12, 250_000) and categories[0].startswith("electronic health records")
    subjects, records, _ = data_subjects(case_of(["ws-1"], patients=12), assets)
    assert (subjects, records) == (12, 0)


def test_drafts_in_markdown_and_html() -> None:
    assets = {a.id: a for a in ward_inventory().assets}
    case = case_of(["ehr-1"], techniques=["T1003.001", "T1041"], owners=["dpo@h1.example"], patients=40,
                   patients_basis="distinct patient ids in the 60 stored events the incident's 3 alerts rest on",
                   organisations=["h1", "pacs-provider"], controllers=["h1"])
    case.title = "Exfiltration <script>alert(1)</script>"
    out = draft(case, assets, "gdpr", T0 + timedelta(hours=5))
    md, page = out["markdown"], out["html"]
    assert md.startswith("# Personal data breach notification (GDPR Art. 33)")
    assert "## Notifying organisation (controller)\n\n- h1\n" in md and "not notifying): pacs-provider" in md
    assert ("Estimated number of data subjects: 40 (an estimate; basis: distinct patient ids in the 60 stored "
            "events the incident's 3 alerts rest on)") in md
    assert "Records held by the affected systems: 250,000 (what could have been reached, an upper bound" in md
    assert "copies of health data may be held by an unauthorised party" in md
    assert "GDPR Art. 33: notify the personal data breach to supervisory authority, due 2026-03-05 09:00 UTC" in md
    assert "<script>" not in page and "&lt;script&gt;" in page and "<h2>Data subjects and records</h2>" in page
    assert "45 CFR 164.404" in draft(case, assets, "hipaa", T0)["markdown"]
    with pytest.raises(InputError):
        draft(case, assets, "ccpa", T0)
