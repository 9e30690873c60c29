"""Incidents as the console shows them: titles in human numbers, one timeline of the incident's entries and
the notices sent, the escalation ladder L1-L4, and the post-incident report (Markdown, raw HTML off)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup

from services.console.human import trigger_text

__all__ = ["human_title", "human_reason", "timeline", "ladder", "report_html", "duration", "ordered"]

_OLD_TITLE = re.compile(r"^(?P<head>.*?): (?P<what>[a-z ]+) \((?P<value>[-\d.e+]+) > (?P<threshold>[-\d.e+]+)\)$")
_OLD_REASON = re.compile(r"^(?P<trigger>[a-z_]+): (?P<value>[-\d.e+]+) > (?P<threshold>[-\d.e+]+)(?P<rest>.*)$", re.S)
_LEVEL = re.compile(r"level (?P<n>[1-4]): (?P<name>[^(;]+)")
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")
LEVELS = 4
# the runbook's escalation path, for levels the incident's timeline does not name
_RUNBOOK = {1: "auto-recovery", 2: "on-call developer", 3: "system administrator", 4: "infrastructure team"}


def human_title(incident: dict[str, Any]) -> str:
    """Titles written before the notifier spoke in human numbers: "demo: error rate high (0.156997 > 0.05)"
    -> "demo: error rate 15.7 % > 5 %"; others as they are."""
    title = str(incident.get("title", ""))
    m = _OLD_TITLE.match(title)
    if m is None or m["what"].replace(" ", "_") != incident.get("trigger"):
        return title
    return f"{m['head']}: {trigger_text(str(incident['trigger']), float(m['value']), float(m['threshold']))}"


def human_reason(reason: str) -> str:
    """Recovery reasons written before human numbers: "error_rate_high: 0.376238 > 0.05" -> "error rate 37.6 % > 5 %"."""
    m = _OLD_REASON.match(reason)
    if m is None:
        return reason
    return trigger_text(m["trigger"], float(m["value"]), float(m["threshold"])) + m["rest"]


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{s} s"


def ordered(incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open (and mitigated) first, then resolved; newest first within each."""
    newest = sorted(incidents, key=lambda i: i["opened_at"], reverse=True)
    return sorted(newest, key=lambda i: i["status"] == "resolved")


def timeline(incident: dict[str, Any], deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The incident's entries and one entry per notice, by time, each with its offset from the opening."""
    opened = _at(incident["opened_at"])
    rows = [{"at": e["at"], "kind": e["kind"], "text": e["text"], "actor": e["actor"]} for e in incident["timeline"]]
    for d in deliveries:
        state = {"sent": "sent", "pending": f"pending (try {d.get('attempts', 0)})", "failed": "failed"}.get(
            d.get("status", ""), d.get("status", ""))
        error = f": {d['error']}" if d.get("error") else ""
        rows.append({"at": d["at"], "kind": "notice", "actor": "notifier",
                     "text": f"{d['channel']} to {d['recipient']} {state}{error}: {d['message']}"})
    rows.sort(key=lambda r: _at(r["at"]))
    for r in rows:
        r["offset"] = "+" + duration((_at(r["at"]) - opened).total_seconds())
        r["time"] = _at(r["at"]).strftime("%H:%M:%S")
    return rows


def ladder(incident: dict[str, Any]) -> list[dict[str, Any]]:
    """L1..L4 with the names the timeline gave them, and which are reached / current."""
    names = {int(m["n"]): m["name"].strip() for e in incident["timeline"] for m in _LEVEL.finditer(e["text"])}
    level = int(incident.get("level", 1))
    return [{"n": n, "name": names.get(n, _RUNBOOK[n]), "reached": n <= level, "current": n == level}
            for n in range(1, LEVELS + 1)]


def report_html(markdown: str | None) -> Markup | None:
    """The report rendered; raw HTML in it is shown as text (the notifier writes it from event fields)."""
    return None if markdown is None else Markup(_MD.render(markdown))  # noqa: S704 - html off above
