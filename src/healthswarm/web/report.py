"""An incident report as one self-contained HTML page: summary, timeline, assets, ATT&CK mapping, evidence and
charts (matplotlib, embedded as base64 PNGs): the incident's alerts over time, the risk of each organisation
over time (`risk.history`, as the dashboard's panel) and the alert volume per detector (as the dashboard's panel)."""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from healthswarm.model import LEVELS
from healthswarm.risk.history import RiskPoint

COLOURS = ["#8a96a3", "#3fa34d", "#d6b000", "#f07a1a", "#e5383b"]
STYLE = """body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2rem auto;color:#1b1f24}
h1{font-size:1.4rem}h2{font-size:1.1rem;border-bottom:1px solid #ccd;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}td,th{border-bottom:1px solid #dde;padding:.25rem .4rem;
text-align:left;vertical-align:top}.sev{display:inline-block;padding:0 .4rem;border-radius:3px;color:#fff}
code{font-size:.8rem;word-break:break-all}"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _png(fig: Any, plt: Any) -> str:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def alerts_chart(timeline: list[dict[str, Any]]) -> str:
    """A PNG (base64) of the incident's alerts over time, one row per level; '' without matplotlib or alerts."""
    plt = _pyplot() if timeline else None
    if plt is None:
        return ""
    fig, ax = plt.subplots(figsize=(9, 2.6), dpi=100)
    for level_index, level in enumerate(LEVELS):
        times = [datetime.fromisoformat(e["timestamp"]) for e in timeline if e["level"] == level]
        if times:
            ax.scatter(times, [level_index] * len(times), color=COLOURS[level_index], s=30, label=level)
    ax.set_yticks(range(len(LEVELS)), LEVELS)
    ax.set_ylim(-0.5, len(LEVELS) - 0.5)
    ax.set_title("Alerts over time (UTC)")
    ax.grid(axis="x", alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig, plt)


def risk_chart(history: Mapping[str, Sequence[RiskPoint]]) -> str:
    """A PNG (base64) of each organisation's risk over time, one line each (the dashboard's "Risk of each
    organisation over time"); '' without matplotlib or points."""
    plt = _pyplot() if any(history.values()) else None
    if plt is None:
        return ""
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
    for org, points in history.items():
        ax.plot([p.assessed_at for p in points], [p.expected_harm for p in points], marker="o", markersize=3,
                label=f"{org} ({points[-1].expected_harm:.2f})")
    ax.set_ylabel("expected harm")
    ax.set_ylim(bottom=0)
    ax.set_title("Risk of each organisation over time (UTC): the worst attacker profile's expected harm")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.autofmt_xdate()
    return _png(fig, plt)


def volume_chart(volume: Mapping[str, Any]) -> str:
    """A PNG (base64) of the stored alerts per detector over time (`detect.service.alert_volume`, what the
    dashboard's "Alert volume per detector" shows): one line per detector; '' without matplotlib or alerts."""
    plt = _pyplot() if volume.get("detectors") else None
    if plt is None:
        return ""
    times = [datetime.fromisoformat(b) for b in volume["buckets"]]
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
    for d in volume["detectors"]:
        ax.step(times, d["counts"], where="post", label=f"{d['detector']} ({d['total']})")
    ax.set_yscale("symlog")
    ax.set_ylabel(f"alerts per {volume['bucket_seconds'] // 60} min")
    ax.set_title("Alert volume per detector (UTC)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.autofmt_xdate()
    return _png(fig, plt)


def incident_html(incident: dict[str, Any], assets: list[dict[str, Any]], alerts: list[dict[str, Any]],
                  generated: datetime, risk: Mapping[str, Sequence[RiskPoint]] | None = None,
                  volume: Mapping[str, Any] | None = None) -> str:
    """The report page; `assets` are the affected assets' details, `alerts` the incident's alerts (evidence),
    `risk` the risk history per organisation and `volume` the stored alerts per detector (context plots)."""
    sev = int(incident["severity"])
    techniques: Counter[tuple[str, str]] = Counter()
    for a in alerts:
        tactics = ", ".join(t.get("shortname") or t["id"] for t in a.get("tactics", ())) or "—"
        for t in a.get("techniques", ()):
            techniques[(t["id"] + (" " + t["name"] if t.get("name") else ""), tactics)] += 1
    chart = alerts_chart(incident["timeline"])
    n_alerts = len(incident["alert_ids"])
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Incident {_e(incident['id'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>Incident {_e(incident['id'])}: {_e(incident['title'])}</h1>",
        f"<p><span class='sev' style='background:{COLOURS[sev]}'>{_e(LEVELS[sev])}</span> · stage "
        f"<b>{_e(incident['stage'])}</b> · state <b>{_e(incident['state'])}</b> · "
        f"{_e(incident['first_seen'])} → {_e(incident['last_seen'])} · "
        f"{n_alerts} alert{'' if n_alerts == 1 else 's'} · "
        f"organisations: {_e(', '.join(incident['organisations']) or '—')}</p>",
        f"<p>Generated {_e(generated.isoformat(timespec='seconds'))} by healthswarm.</p>",
    ]
    if chart:
        parts.append(f"<img alt='alerts over time' src='data:image/png;base64,{chart}'>")
    parts.append("<h2>Timeline</h2><table><tr><th>time (UTC)</th><th>level</th><th>alert</th><th>tactics</th>"
                 "<th>assets</th><th>why it joined</th></tr>")
    for e in incident["timeline"]:
        parts.append(f"<tr><td>{_e(e['timestamp'])}</td><td>{_e(e['level'])}</td><td>{_e(e['title'])}</td>"
                     f"<td>{_e(', '.join(e['tactics']))}</td><td>{_e(', '.join(e['assets']))}</td>"
                     f"<td>{_e(e['note'])}</td></tr>")
    parts.append("</table><h2>Affected assets</h2><table><tr><th>asset</th><th>kind</th><th>organisation / zone</th>"
                 "<th>product</th><th>safety / conf. / avail.</th><th>findings</th></tr>")
    for a in assets:
        c = a["criticality"]
        parts.append(f"<tr><td>{_e(a['id'])}<br>{_e(a['name'])}</td><td>{_e(a['kind'])}</td>"
                     f"<td>{_e(a['organisation'])} / {_e(a['zone'])}</td>"
                     f"<td>{_e(a['vendor'])} {_e(a['product'])} {_e(a['version'])}</td>"
                     f"<td>{c['safety']} / {c['confidentiality']} / {c['availability']}</td>"
                     f"<td>{len(a['findings'])}</td></tr>")
    parts.append("</table><h2>ATT&amp;CK mapping</h2><table><tr><th>technique</th><th>tactics</th><th>alerts</th></tr>")
    for (technique, tactics), n in sorted(techniques.items(), key=lambda kv: (-kv[1], kv[0])):
        parts.append(f"<tr><td>{_e(technique)}</td><td>{_e(tactics)}</td><td>{n}</td></tr>")
    parts.append("</table><h2>Evidence</h2><table><tr><th>alert</th><th>detector / rule</th><th>events</th></tr>")
    for a in alerts:
        refs = "<br>".join(f"<code>{_e(ev['source'])}#{_e(ev['record'])}</code>" for ev in a.get("events", ())[:10])
        parts.append(f"<tr><td>{_e(a['timestamp'])}<br>{_e(a['level'])}: {_e(a['title'])}</td>"
                     f"<td>{_e(a['detector'])}<br><code>{_e(a['rule_id'])}</code></td><td>{refs}</td></tr>")
    context = [(title, chart) for title, chart in (("Risk of each organisation over time", risk_chart(risk or {})),
                                                   ("Alert volume per detector", volume_chart(volume or {}))) if chart]
    parts.append("</table>")
    for title, chart in context:
        parts.append(f"<h2>{title}</h2><img alt='{title.lower()}' src='data:image/png;base64,{chart}'>")
    parts.append("</body></html>\n")
    return "".join(parts)
