"""The public status page: state per service from incidents, rendered as JSON or plain HTML."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any, Literal

from services.notifier.models import Incident

__all__ = ["build_status", "render_html", "State"]

State = Literal["operational", "degraded", "major_outage"]
_RANK = {"operational": 0, "degraded": 1, "major_outage": 2}
_LABEL = {"operational": "Operational", "degraded": "Degraded", "major_outage": "Major outage"}


def _state(inc: Incident) -> State:
    if inc.status == "resolved":
        return "operational"
    return "major_outage" if inc.severity == "critical" and inc.status == "open" else "degraded"


def build_status(incidents: list[Incident], *, now: datetime) -> dict[str, Any]:
    """`incidents`: open ones and those resolved in the window (the store's `recent`)."""
    services: dict[str, State] = {}
    for inc in incidents:
        current = services.get(inc.service, "operational")
        services[inc.service] = max(current, _state(inc), key=_RANK.__getitem__)
    overall: State = max(services.values(), key=_RANK.__getitem__, default="operational")
    dump = [i.model_dump(mode="json") for i in incidents]
    return {"generated_at": now.isoformat(), "overall": overall,
            "services": dict(sorted(services.items())),
            "open": [d for d in dump if d["status"] != "resolved"],
            "resolved": [d for d in dump if d["status"] == "resolved"]}


def _incident_html(d: dict[str, Any]) -> str:
    rows = "".join(f"<li><time>{escape(e['at'][:19].replace('T', ' '))}</time> <b>{escape(e['kind'])}</b> "
                   f"{escape(e['text'])}</li>" for e in reversed(d["timeline"]))
    return (f"<article class='{escape(d['severity'])}'><h3>{escape(d['title'])}</h3>"
            f"<p>{escape(d['status'])} &middot; {escape(d['severity'])} &middot; level {d['level']} &middot; "
            f"<code>{escape(d['incident_id'])}</code></p><ul>{rows}</ul></article>")


def render_html(status: dict[str, Any]) -> str:
    services = "".join(f"<tr><td>{escape(s)}</td><td class='{st}'>{_LABEL[st]}</td></tr>"
                       for s, st in status["services"].items()) or "<tr><td colspan=2>No incidents reported</td></tr>"
    open_ = "".join(_incident_html(d) for d in status["open"]) or "<p>No open incidents.</p>"
    past = "".join(_incident_html(d) for d in status["resolved"]) or "<p>No incidents in the last 7 days.</p>"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Status</title>
<meta http-equiv="refresh" content="30"><meta name="viewport" content="width=device-width">
<style>body{{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}}
.operational{{color:#1a7f37}}.degraded{{color:#9a6700}}.major_outage{{color:#cf222e}}
article{{border-left:4px solid #999;padding-left:1rem;margin:1rem 0}}article.critical{{border-color:#cf222e}}
article.major{{border-color:#9a6700}}time{{color:#666}}td{{padding:.2rem 1rem .2rem 0}}</style></head><body>
<h1>System status: <span class="{status['overall']}">{_LABEL[status['overall']]}</span></h1>
<table>{services}</table><h2>Open incidents</h2>{open_}<h2>Past 7 days</h2>{past}
<p><small>Updated {escape(status['generated_at'][:19].replace('T', ' '))} UTC</small></p></body></html>"""
