"""Outbound edge: subscribers and their deliveries in Postgres (asyncpg), and the key of the signed links.

A notice is fanned out in SQL, one row per confirmed subscriber, in the transaction of what caused it
(a window scheduled) or idempotently by its `notice_id` (an incident notice redelivered); the relay then
claims due rows with a lease (`FOR UPDATE SKIP LOCKED`), as the incident deliveries are.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.notifier.subscriptions import Notice, Subscriber

__all__ = ["PgSubscriberStore", "Due", "fan_out", "FAN_OUT"]

_SUB = "subscriber_id, kind, target, secret, created_at, confirmed_at, unsubscribed_at"
FAN_OUT = ("INSERT INTO subscriber_deliveries (subscriber_id, notice_key, kind, payload, created_at, next_at)"
           " SELECT subscriber_id, $1, $2, $3, $4, $4 FROM subscribers"
           " WHERE confirmed_at IS NOT NULL AND unsubscribed_at IS NULL"
           " ON CONFLICT (subscriber_id, notice_key) DO NOTHING")
_CLAIM = ("UPDATE subscriber_deliveries SET lease_until = $2 WHERE id IN (SELECT d.id FROM subscriber_deliveries d"
          " JOIN subscribers s USING (subscriber_id) WHERE d.status = 'pending' AND d.next_at <= $1"
          " AND (d.lease_until IS NULL OR d.lease_until < $1) AND s.unsubscribed_at IS NULL"
          " ORDER BY d.id LIMIT $3 FOR UPDATE OF d SKIP LOCKED) RETURNING id, subscriber_id, payload, attempts")


async def fan_out(conn: Any, notice: Notice) -> None:
    """One pending delivery of `notice` per confirmed, live subscriber (on `conn`: inside the caller's
    transaction)."""
    await conn.execute(FAN_OUT, notice.notice_id, notice.type, notice.model_dump_json(), notice.at)


@dataclass(frozen=True)
class Due:
    """A claimed delivery: the notice, to whom, and how often it failed before."""

    row_id: int
    subscriber: Subscriber
    notice: Notice
    attempts: int


class PgSubscriberStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def key(self) -> bytes:
        """The signing key of confirmation / unsubscribe links: made by the first instance, read by all."""
        await self.pool.execute("INSERT INTO notifier_keys (name, secret) VALUES ('links', $1)"
                                " ON CONFLICT (name) DO NOTHING", secrets.token_urlsafe(48))
        value: str = await self.pool.fetchval("SELECT secret FROM notifier_keys WHERE name = 'links'")
        return value.encode()

    async def subscribe(self, *, kind: str, target: str, secret: str | None, now: datetime,
                        confirmed: bool) -> tuple[Subscriber, bool]:
        """The live subscriber of `target` (created if none); True when it was created now."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(f"INSERT INTO subscribers ({_SUB}) VALUES ($1, $2, $3, $4, $5, $6, NULL)"
                                      f" ON CONFLICT DO NOTHING RETURNING {_SUB}", "sub-" + uuid.uuid4().hex[:16],
                                      kind, target, secret, now, now if confirmed else None)
            if row is not None:
                return Subscriber(**dict(row)), True
            row = await conn.fetchrow(f"SELECT {_SUB} FROM subscribers WHERE kind = $1 AND target = $2"
                                      " AND unsubscribed_at IS NULL", kind, target)
            return Subscriber(**dict(row)), False

    async def confirm(self, subscriber_id: str, *, now: datetime) -> Subscriber | None:
        row = await self.pool.fetchrow(f"UPDATE subscribers SET confirmed_at = coalesce(confirmed_at, $2)"
                                       f" WHERE subscriber_id = $1 AND unsubscribed_at IS NULL RETURNING {_SUB}",
                                       subscriber_id, now)
        return None if row is None else Subscriber(**dict(row))

    async def unsubscribe(self, subscriber_id: str, *, now: datetime) -> Subscriber | None:
        """Ends the subscription (its pending deliveries go with it); None when it was not live."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(f"UPDATE subscribers SET unsubscribed_at = $2, secret = NULL WHERE"
                                      f" subscriber_id = $1 AND unsubscribed_at IS NULL RETURNING {_SUB}",
                                      subscriber_id, now)
            await conn.execute("DELETE FROM subscriber_deliveries WHERE subscriber_id = $1 AND status = 'pending'",
                               subscriber_id)
        return None if row is None else Subscriber(**dict(row))

    async def send_to(self, subscriber_id: str, notice: Notice) -> None:
        """One delivery to one subscriber, confirmed or not (the confirmation e-mail)."""
        await self.pool.execute("INSERT INTO subscriber_deliveries (subscriber_id, notice_key, kind, payload,"
                                " created_at, next_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
                                subscriber_id, notice.notice_id, notice.type, notice.model_dump_json(), notice.at)

    async def fan_out(self, notice: Notice) -> None:
        await fan_out(self.pool, notice)

    async def claim(self, *, now: datetime, lease: timedelta, limit: int = 50) -> list[Due]:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, now, now + lease, limit)
            if not rows:
                return []
            subs = await conn.fetch(f"SELECT {_SUB} FROM subscribers WHERE subscriber_id = ANY($1::text[])",
                                    list({r["subscriber_id"] for r in rows}))
        by_id = {s["subscriber_id"]: Subscriber(**dict(s)) for s in subs}
        return [Due(r["id"], by_id[r["subscriber_id"]], Notice.model_validate_json(r["payload"]), r["attempts"])
                for r in sorted(rows, key=lambda r: r["id"])]

    async def done(self, row_id: int) -> None:
        await self.pool.execute("UPDATE subscriber_deliveries SET status = 'sent', attempts = attempts + 1,"
                                " lease_until = NULL, last_error = '' WHERE id = $1", row_id)

    async def failed(self, row_id: int, *, error: str, next_at: datetime | None) -> None:
        """Tried again at `next_at`; None: given up."""
        await self.pool.execute("UPDATE subscriber_deliveries SET attempts = attempts + 1, lease_until = NULL,"
                                " last_error = $2, status = CASE WHEN $3::timestamptz IS NULL THEN 'failed'"
                                " ELSE 'pending' END, next_at = coalesce($3, next_at) WHERE id = $1",
                                row_id, error[:300], next_at)

    async def deliveries(self, subscriber_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT kind, notice_key, status, attempts, last_error, next_at FROM"
                                     " subscriber_deliveries WHERE subscriber_id = $1 ORDER BY id", subscriber_id)
        return [dict(r) for r in rows]
