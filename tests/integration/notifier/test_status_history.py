"""The status page's history in a real (private) Postgres: the incident intervals of the uptime bars and when
recording began, and the page built from the store (tests/faults.py's throwaway server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from services.notifier.models import Change, Incident
from services.notifier.repository import PgIncidentStore, migrate, open_pool
from services.notifier.status_sources import PgHistory, Snapshot, StatusData
from shared.settings import PostgresSettings
from tests.faults import PrivatePostgres


class Probed:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot


def incident(n: int, *, service: str, opened: datetime, resolved: datetime | None) -> Incident:
    return Incident(incident_id=f"inc-{n}", service=service, trigger="error_rate_high", episode_id=f"ep{n}",
                    title=f"{service}: error rate", severity="major", opened_at=opened,
                    status="resolved" if resolved else "open", resolved_at=resolved)


async def test_history_reads_the_intervals_of_the_window_and_the_recording_start(
    private_postgres: PrivatePostgres,
) -> None:
    now = datetime.now(UTC)
    async with open_pool(PostgresSettings(dsn=SecretStr(private_postgres.dsn)), schema="notifier_status") as pool:
        before = datetime.now(UTC)
        await migrate(pool, schema="notifier_status")
        store, history = PgIncidentStore(pool), PgHistory(pool)
        for inc in (incident(1, service="demo", opened=now - timedelta(days=100), resolved=now - timedelta(days=95)),
                    incident(2, service="demo", opened=now - timedelta(hours=5), resolved=now - timedelta(hours=2)),
                    incident(3, service="shop", opened=now - timedelta(hours=1), resolved=None)):
            assert await store.commit(Change(incident=inc, version=None))
        outages = await history.outages(since=now - timedelta(days=90))
        assert sorted((o.service, o.end is None) for o in outages) == [("demo", False), ("shop", True)]
        since = await history.recording_since()
        assert since is not None and before - timedelta(seconds=5) <= since <= datetime.now(UTC)
        probed = {"services": {"demo": {"checks": {"demo": {"state": "up", "status": "pass", "critical": True}}}}}
        status = await StatusData(history=history, sources=Probed(Snapshot(probed))).status(  # type: ignore[arg-type]
            store=store, now=datetime.now(UTC))
        bars = {c["name"]: c["uptime"] for c in status["components"]}
        assert bars["demo"]["days"][-2]["uptime"] is None  # recording began today: yesterday is no data
        # only the recorded part of today counts: demo's incident ended before it, shop's is open all along
        assert (bars["demo"]["days"][-1]["uptime"], bars["demo"]["days"][-1]["worst"]) == (1.0, None)
        assert (bars["shop"]["days"][-1]["uptime"], bars["shop"]["days"][-1]["worst"]) == (0.0, "major")
        assert [i["incident_id"] for i in status["open"]] == ["inc-3"] and status["overall"] == "degraded"
