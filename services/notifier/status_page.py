"""The public status page: components (health + SLA), 90-day uptime bars (incident history), open and
recent incidents, scheduled maintenance; rendered as JSON, HTML (Jinja2) or an Atom feed. No framework
imports besides Jinja2."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from functools import cache
from html import escape
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from services.notifier.maintenance import MaintenanceWindow
from services.notifier.maintenance_service import public_view
from services.notifier.models import Incident
from services.notifier.status_components import LABEL, components, incident_state, worst
from services.notifier.uptime import DAYS, Outage, daily_uptime, uptime_ratio

__all__ = ["build_status", "render_html", "render_feed", "render_message", "State", "HISTORY"]

State = Literal["operational", "under_maintenance", "degraded", "partial_outage", "major_outage"]
HISTORY = timedelta(days=7)
_TEMPLATES = Path(__file__).parent / "templates"


def _bars(outages: list[Outage], *, since: datetime | None, now: datetime) -> dict[str, Any]:
    days = daily_uptime(outages=outages, since=since, now=now)
    return {"ratio": uptime_ratio(days),
            "days": [{"date": d.day.isoformat(), "uptime": d.uptime, "worst": d.worst} for d in days]}


def build_status(incidents: list[Incident], *, now: datetime, system: dict[str, Any] | None = None,
                 sla: dict[str, Any] | None = None, outages: list[Outage] | None = None,
                 recording_since: datetime | None = None, source_errors: tuple[str, ...] = (),
                 sources_at: datetime | None = None, maintenance: list[MaintenanceWindow] | None = None,
                 ) -> dict[str, Any]:
    """`incidents`: open ones and those resolved in the window (the store's `recent`). `system` / `sla`: the
    health and SLA services' last answers; `outages`: incident intervals of the last 90 days. A component
    gets uptime bars when the SLA service watches it or it had an incident; others show no history.
    `maintenance`: windows not yet over (in progress ones put their components "under maintenance")."""
    services: dict[str, str] = {}
    for inc in incidents:
        services[inc.service] = worst([services.get(inc.service, "operational"), incident_state(inc)])
    scheduled = _scheduled(maintenance or [], now=now)
    notes = {c: f"Maintenance until {w['ends_at'][:16].replace('T', ' ')} UTC: {w['title']}"
             for w in reversed(scheduled["in_progress"]) for c in w["components"]}
    services.update({name: "under_maintenance" for name in services.keys() & notes.keys()})
    watched = {s["service"] for s in (sla or {}).get("services", [])} | {o.service for o in outages or []}
    found = components(system=system, sla=sla, incidents=incidents, maintenance=notes)
    by_service: dict[str, list[Outage]] = {}
    for o in outages or []:
        by_service.setdefault(o.service, []).append(o)
    rows = [{**asdict(c), "label": LABEL[c.state],
             "uptime": _bars(by_service.get(c.name, []), since=recording_since, now=now) if c.name in watched else None}
            for c in found]
    overall = worst([c.state for c in found] + list(services.values()))
    dump = [i.model_dump(mode="json") for i in incidents]
    return {"generated_at": now.isoformat(), "overall": "operational" if overall == "unknown" else overall,
            "services": dict(sorted(services.items())),
            "open": [d for d in dump if d["status"] != "resolved"],
            "resolved": [d for d in dump if d["status"] == "resolved"],
            "components": rows, "uptime_days": DAYS, "maintenance": scheduled,
            "recording_since": recording_since.isoformat() if recording_since else None,
            "sources": {"as_of": sources_at.isoformat() if sources_at else None, "errors": list(source_errors)}}


def _scheduled(windows: list[MaintenanceWindow], *, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """In progress (ending first) and upcoming (starting first) windows; cancelled and past ones are left out."""
    views = [public_view(w, now=now) for w in windows]
    return {"in_progress": sorted((v for v in views if v["phase"] == "in_progress"), key=lambda v: v["ends_at"]),
            "upcoming": sorted((v for v in views if v["phase"] == "upcoming"), key=lambda v: v["starts_at"])}


@cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html", "atom"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["utc"] = lambda iso: iso[:16].replace("T", " ") + " UTC" if iso else ""
    env.filters["pct"] = _pct
    env.globals["LABEL"] = {**LABEL, "operational": "All systems operational"}
    return env


def _pct(x: float | None) -> str:
    return "no data" if x is None else f"{x * 100:.2f}".rstrip("0").rstrip(".") + " %"


def _bar(d: dict[str, Any]) -> str:
    worst = d["worst"]
    cls = "nodata" if d["uptime"] is None else worst or "up"
    title = f"{d['date']}: {_pct(d['uptime'])}" + (f", {worst} incident" if worst else "")
    return f'<li class="{escape(cls)}" title="{escape(title)}"></li>'


def _bar_view(uptime: dict[str, Any] | None) -> dict[str, Any] | None:
    """Per day a class and a title; the counts for the screen-reader summary."""
    if uptime is None:
        return None
    days = uptime["days"]
    bars = "".join(map(_bar, days))
    return {"ratio": _pct(uptime["ratio"]), "bars": Markup(bars), "incident_days": sum(1 for d in days if d["worst"]),
            "nodata_days": sum(1 for d in days if d["uptime"] is None)}


def render_html(status: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in status["components"]:
        groups.setdefault(c["group"], []).append({**c, "uptime": _bar_view(c["uptime"])})
    return _env().get_template("status.html").render(s=status, groups=groups)


def render_feed(status: dict[str, Any], *, self_url: str, page_url: str) -> str:
    """Atom (RFC 4287): one entry per open or recent incident, updated at its last timeline entry, and one
    per maintenance window in progress or upcoming, updated when it was scheduled or began."""
    windows = status["maintenance"]["in_progress"] + status["maintenance"]["upcoming"]
    entries = sorted(status["open"] + status["resolved"] + windows, key=_updated, reverse=True)
    updated = _updated(entries[0]) if entries else (status["recording_since"] or status["generated_at"])
    return _env().get_template("feed.atom").render(s=status, entries=entries, updated=updated,
                                                   self_url=self_url, page_url=page_url, updated_of=_updated)


def render_message(title: str, text: str, *, link: str | None = None, link_text: str = "",
                   form_token: str | None = None) -> str:
    """A small page of its own (subscription confirmed, unsubscribe button, a bad link)."""
    return _env().get_template("message.html").render(title=title, text=text, link=link, link_text=link_text,
                                                      form_token=form_token)


def _updated(d: dict[str, Any]) -> str:
    if "window_id" in d:
        return max(_norm(d["created_at"]), _norm(d["starts_at"]) if d["phase"] == "in_progress" else "")
    times = [d["opened_at"], d["mitigated_at"], d["resolved_at"], *(e["at"] for e in d["timeline"])]
    return max(_norm(t) for t in times if t)


def _norm(iso: str) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).isoformat()
