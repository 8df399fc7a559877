"""An incident report as one self-contained HTML page: summary, timeline, assets, ATT&CK mapping, evidence and
a chart of alerts over time (matplotlib, embedded as a base64 PNG)."""

from __future__ import annotations

import base64
import io
from collections import Counter
from datetime import datetime
from html import escape
from typing import Any

from healthswarm.model import LEVELS

COLOURS = ["#8a96a3", "#3fa34d", "#d6b000", "#f07a1a", "#e5383b"]
STYLE = """body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2rem auto;color:#1b1f24}
h1{font-size:1.4rem}h2{font-size:1.1rem;border-bottom:1px solid #ccd;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}td,th{border-bottom:1px solid #dde;padding:.25rem .4rem;
text-align:left;vertical-align:top}.sev{display:inline-block;padding:0 .4rem;border-radius:3px;color:#fff}
code{font-size:.8rem;word-break:break-all}"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def alerts_chart(timeline: list[dict[str, Any]]) -> str:
    """A PNG (base64) of the incident's alerts over time, one row per level; '' without matplotlib or alerts."""
    if not timeline:
        return ""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
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
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def incident_html(incident: dict[str, Any], assets: list[dict[str, Any]], alerts: list[dict[str, Any]],
                  generated: datetime) -> str:
    """The report page; `assets` are the affected assets' details, `alerts` the incident's alerts (evidence)."""
    sev = int(incident["severity"])
    techniques: Counter[tuple[str, str]] = Counter()
    for a in alerts:
        tactics = ", ".join(t.get("shortname") or t["id"] for t in a.get("tactics", ())) or "—"
        for t in a.get("techniques", ()):
            techniques[(t["id"] + (" " + t["name"] if t.get("name") else ""), tactics)] += 1
    chart = alerts_chart(incident["timeline"])
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Incident {_e(incident['id'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>Incident {_e(incident['id'])}: {_e(incident['title'])}</h1>",
        f"<p><span class='sev' style='background:{COLOURS[sev]}'>{_e(LEVELS[sev])}</span> · stage "
        f"<b>{_e(incident['stage'])}</b> · state <b>{_e(incident['state'])}</b> · "
        f"{_e(incident['first_seen'])} → {_e(incident['last_seen'])} · {len(incident['alert_ids'])} alerts · "
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
    parts.append("</table></body></html>\n")
    return "".join(parts)
