"""The post-incident report: Markdown from an incident's timeline and the runbook's recovery targets (written
when the incident resolves), and the same report as an HTML page (`render_report_html`, raw HTML off).

Sections: summary, impact, trigger, timeline, actions and their verified effects, the features recovery turned
off (they stay off until a person turns them on), time to detect / mitigate / resolve against the runbook's
5 min / 15 min / 1 h, and the sections people fill in (root cause, action items).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from services.notifier.impact import Impact
from services.notifier.models import Incident
from services.notifier.policy import Targets

__all__ = ["render_report", "render_report_html", "fmt_duration", "clock_times", "templates", "kept_off_note",
           "KEPT_OFF", "VERIFIED"]

_MD = MarkdownIt("commonmark", {"html": False}).enable("table")
_TODO = "_To be filled in by the incident owner._"
_KILLED = re.compile(r"killed flags: ([^;]+)")
KEPT_OFF = "turned off by recovery, kept off until a person turns them on: "
VERIFIED = "effect verified: "


def kept_off_note(*, action: str, detail: str) -> str | None:
    """The timeline text for the flags a disable_new_features turned off (from the action's detail, "killed
    flags: a, b; ..."), or None when it turned none off."""
    found = _KILLED.search(detail) if action == "disable_new_features" else None
    flags = [f.strip() for f in found.group(1).split(",")] if found else []
    flags = [f for f in flags if f and f != "none on"]
    return KEPT_OFF + ", ".join(flags) if flags else None


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


@cache
def templates() -> Environment:
    return Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                       autoescape=select_autoescape(["html"]))


def _verdict(seconds: float, target: float) -> str:
    return f"{'met' if seconds <= target else 'MISSED'} (< {fmt_duration(target)})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def clock_times(inc: Incident) -> dict[str, float | None]:
    """Seconds from the start of impact (the first bad request when the SLA processor said, else the opening)
    to detection (the incident opened), mitigation and resolution."""
    detected = next((e.at for e in inc.timeline if e.kind == "detected"), None)
    start = detected or inc.opened_at

    def since(t: datetime | None) -> float | None:
        return None if t is None else max((t - start).total_seconds(), 0.0)
    return {"detect": since(inc.opened_at) if detected else None, "mitigate": since(inc.mitigated_at),
            "resolve": since(inc.resolved_at)}


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary(inc: Incident) -> list[str]:
    end = inc.resolved_at or inc.opened_at
    return ["## Summary", "", f"- Incident: `{inc.incident_id}`", f"- Service: `{inc.service}`",
            f"- Severity: {inc.severity}", f"- Opened: {_utc(inc.opened_at)}",
            f"- Resolved: {_utc(end)} by {inc.resolved_by or '-'}",
            f"- Highest escalation level: {inc.level}", f"- Acknowledged by: {inc.acknowledged_by or '-'}", ""]


def _impact(inc: Incident, budget_note: str | None, impact: Impact | None) -> list[str]:
    end = inc.resolved_at or inc.opened_at
    figures = impact.lines() if impact is not None else [
        "- Requests failed: not known (the SLA service did not answer; see its series for the service)",
        "- Error budget consumed: not known"]
    note = [f"- Budget alert during the incident: {budget_note}"] if budget_note else []
    return ["## Impact", "", f"- Duration: {fmt_duration((end - inc.opened_at).total_seconds())}", *figures,
            *note, f"- During maintenance: {'yes' if inc.during_maintenance else 'no'}", ""]


def _trigger(inc: Incident) -> list[str]:
    opened = next((e.text for e in inc.timeline if e.kind == "opened"), inc.title)
    return ["## Trigger", "", f"`{inc.trigger}` (episode `{inc.episode_id}`): {opened}", ""]


def _timeline(inc: Incident) -> list[str]:
    lines = ["## Timeline", "", "| time (UTC) | + | what | who |", "|---|---|---|---|"]
    for e in sorted(inc.timeline, key=lambda e: e.at):
        offset = fmt_duration((e.at - inc.opened_at).total_seconds()) if e.at >= inc.opened_at else \
            "-" + fmt_duration((inc.opened_at - e.at).total_seconds())
        lines.append(f"| {e.at.strftime('%Y-%m-%d %H:%M:%S')} | {offset} | {e.kind}: {_cell(e.text)} | {e.actor} |")
    return lines + [""]


def _actions(inc: Incident) -> list[str]:
    lines = ["## Actions and their verified effects", ""]
    rows = [e for e in inc.timeline if e.kind in ("action", "mitigated") and not e.text.startswith(KEPT_OFF)]
    lines += [f"- {e.at.strftime('%H:%M:%S')} {'effect: ' if e.kind == 'mitigated' else ''}{e.text} ({e.actor})"
              for e in rows] or ["- none recorded"]
    if not any(e.kind == "mitigated" or e.text.startswith(VERIFIED) for e in inc.timeline):
        lines.append("- no effect of an action was verified")
    return lines + [""]


def _kept_off(inc: Incident) -> list[str]:
    lines = ["## Features recovery turned off", ""]
    for e in (e for e in inc.timeline if e.text.startswith(KEPT_OFF)):
        for flag in e.text.removeprefix(KEPT_OFF).split(", "):
            lines.append(f"- `{flag}`: turned off by recovery at {_utc(e.at)}; it stays off until a person turns it"
                         " on (the console's Flags and Recovery pages show whether one did)")
    return lines + ([""] if len(lines) > 2 else ["- none", ""])


def _against_runbook(inc: Incident, targets: Targets) -> list[str]:
    total = ((inc.resolved_at or inc.opened_at) - inc.opened_at).total_seconds()
    times = clock_times(inc)
    lines = ["## Recovery time against the runbook", "", "| measure | time | runbook target | verdict |",
             "|---|---|---|---|"]
    for name, target in (("detect", targets.auto_recovery), ("mitigate", targets.manual_intervention),
                         ("resolve", targets.full_restore)):
        t = times[name]
        lines.append(f"| Time to {name} | {'not known' if t is None else fmt_duration(t)} | {fmt_duration(target)} "
                     f"| {'-' if t is None else ('met' if t <= target else 'MISSED')} |")
    lines.append("")
    if inc.mitigated_at is not None:
        mitigated = (inc.mitigated_at - inc.opened_at).total_seconds()
        lines.append(f"- Time to mitigation: {fmt_duration(mitigated)}; auto-recovery target "
                     f"{_verdict(mitigated, targets.auto_recovery)}")
    else:
        lines.append("- Not mitigated by automatic recovery")
    lines.append(f"- Time to resolution: {fmt_duration(total)}; "
                 + ("auto-recovery target " + _verdict(total, targets.auto_recovery) if inc.level == 1 else
                    "manual-intervention target " + _verdict(total, targets.manual_intervention)))
    lines.append(f"- Full-restore target {_verdict(total, targets.full_restore)}")
    return lines + [""]


def _to_fill() -> list[str]:
    return ["## Root cause", "", _TODO, "", "## Contributing factors", "", _TODO, "",
            "## Action items", "", "| action | owner | due | ticket |", "|---|---|---|---|", "|  |  |  |  |", "",
            "## Lessons learned", "", _TODO, ""]


def render_report(incident: Incident, *, targets: Targets, budget_note: str | None = None,
                  impact: Impact | None = None) -> str:
    """The report in Markdown (stored with the incident when it resolves); `impact` from the SLA service."""
    inc = incident
    lines = [f"# Post-incident report: {inc.title}", "", *_summary(inc), *_impact(inc, budget_note, impact),
             *_trigger(inc), *_timeline(inc), *_actions(inc), *_kept_off(inc), *_against_runbook(inc, targets),
             *_to_fill()]
    return "\n".join(lines)


def render_report_html(markdown: str, *, incident: Incident) -> str:
    """The stored report as a page of its own (the Markdown's raw HTML is not rendered: it is escaped)."""
    body = Markup(_MD.render(markdown))  # noqa: S704 - markdown-it with html off escapes every tag
    return templates().get_template("report.html").render(inc=incident, body=body)
