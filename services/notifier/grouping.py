"""Related triggers of one service in one burst make one incident (PagerDuty's alert grouping, by content
and time): a trigger that is a known consequence of another joins that one's unresolved incident, opened
within GROUP_WINDOW, as a timeline entry instead of opening (and paging for) a second incident.

The consequence we know: slow responses make recovery open the slow dependency's breaker, which fails
requests fast, so `error_rate_high` follows `latency_high` (issue 14: one slow handler made three actions
and two incidents). A lost database (`db_connection_lost`) has the same shape; it is left out until a
test drives it, since its errors are the app's own 503s, not a breaker recovery opened. The incident resolves once every episode in it has cleared, as a
PagerDuty incident resolves with the last of its alerts. The markers live in the timeline
("joined: ... (episode X)", "cleared: ... (episode X)"), so no schema change is needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from services.notifier.models import Incident

__all__ = ["FOLLOWS", "GROUP_WINDOW", "joining", "joined_by", "joined_text", "cleared_text", "still_firing"]

FOLLOWS: dict[str, tuple[str, ...]] = {"error_rate_high": ("latency_high",)}
GROUP_WINDOW = timedelta(minutes=10)
_JOINED, _CLEARED = "joined: ", "cleared: "


def joining(incidents: Iterable[Incident], *, service: str, trigger: str, now: datetime) -> Incident | None:
    """The newest unresolved incident of `service` whose trigger `trigger` follows, opened within the window."""
    causes = FOLLOWS.get(trigger, ())
    found = [i for i in incidents if i.service == service and i.trigger in causes and i.status != "resolved"
             and now - i.opened_at <= GROUP_WINDOW]
    return max(found, key=lambda i: i.opened_at, default=None)


def joined_text(*, title: str, trigger: str, episode_id: str, into: Incident) -> str:
    return (f"{_JOINED}{title} (episode {episode_id}): {trigger} follows {into.trigger} on the same service "
            f"within {GROUP_WINDOW.total_seconds() / 60:g} min, one incident")


def cleared_text(*, trigger: str, episode_id: str, note: str) -> str:
    return f"{_CLEARED}{trigger} (episode {episode_id}): {note}"


def _episodes(inc: Incident, prefix: str) -> set[str]:
    return {e.text.split("(episode ", 1)[1].split(")", 1)[0] for e in inc.timeline
            if e.text.startswith(prefix) and "(episode " in e.text}


def joined_by(incidents: Iterable[Incident], *, service: str, episode_id: str) -> Incident | None:
    """The unresolved incident that took in `episode_id` of `service`."""
    return next((i for i in incidents if i.service == service and i.status != "resolved"
                 and episode_id in _episodes(i, _JOINED)), None)


def still_firing(inc: Incident, *, cleared: str) -> list[str]:
    """The episodes of a grouped incident that have not cleared (besides `cleared`); [] when not grouped."""
    joined = _episodes(inc, _JOINED)
    if not joined:
        return []
    return sorted(({inc.episode_id} | joined) - _episodes(inc, _CLEARED) - {cleared})
