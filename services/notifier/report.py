"""The post-incident report: Markdown from an incident's timeline and the runbook's recovery targets."""

from __future__ import annotations

from services.notifier.models import Incident
from services.notifier.policy import Targets

__all__ = ["render_report", "fmt_duration"]


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def _verdict(seconds: float, target: float) -> str:
    return f"{'met' if seconds <= target else 'MISSED'} (< {fmt_duration(target)})"


def render_report(incident: Incident, *, targets: Targets, budget_note: str | None = None) -> str:
    """Timeline, durations against the runbook's targets, budget impact when known."""
    inc = incident
    end = inc.resolved_at or inc.opened_at
    total = (end - inc.opened_at).total_seconds()
    lines = [f"# Post-incident report: {inc.title}", "",
             f"- Incident: `{inc.incident_id}`", f"- Service: `{inc.service}`", f"- Trigger: `{inc.trigger}` "
             f"(episode `{inc.episode_id}`)", f"- Severity: {inc.severity}",
             f"- Opened: {inc.opened_at.isoformat()}", f"- Resolved: {end.isoformat()} by {inc.resolved_by or '-'}",
             f"- Highest escalation level: {inc.level}", f"- Acknowledged by: {inc.acknowledged_by or '-'}", "",
             "## Timeline", "", "| time (UTC) | + | what | who |", "|---|---|---|---|"]
    for e in inc.timeline:
        offset = fmt_duration((e.at - inc.opened_at).total_seconds())
        text = e.text.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {e.at.strftime('%Y-%m-%d %H:%M:%S')} | {offset} | {e.kind}: {text} | {e.actor} |")
    lines += ["", "## Recovery time against the runbook", ""]
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
    lines += ["", "## Error budget impact", "", f"- {budget_note or 'not known to the notifier'}", ""]
    return "\n".join(lines)
