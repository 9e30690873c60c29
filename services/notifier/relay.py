"""The notifier's relay: what a change wrote is sent after the write (right away, and again by the tick
for what failed: Kafka down, a webhook refusing), each notice and event claimed with a lease so two
instances never send one twice. A failed notice is a result: recorded with its event, redelivered with
backoff until the policy gives up."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import cast

from services.notifier.models import DeliveryRecord, Incident
from services.notifier.policy import ChannelName, NotifierPolicy
from services.notifier.ports import IncidentStore, Sender
from shared.events import NotificationDelivered, NotificationFailed
from shared.ports import Clock, Publisher
from shared.tracing_links import continued

__all__ = ["Relay", "SCOPE"]

SCOPE = "services.notifier.service"  # the logger and tracer name of the notifier's core (all its modules)
log = logging.getLogger(SCOPE)


class Relay:
    def __init__(self, *, policy: NotifierPolicy, publisher: Publisher, store: IncidentStore, sender: Sender,
                 now: Clock, lease_s: float) -> None:
        """`lease_s`: how long a claimed event or notice is left to its instance before another may send it."""
        self.policy = policy
        self.publisher = publisher
        self.store = store
        self.sender = sender
        self.now = now
        self.lease = timedelta(seconds=lease_s)

    async def dispatch(self) -> None:
        """Send the due notices, all at once (a slow or failing channel does not hold up the others, and a page
        does not wait for Kafka), then publish the due outbox events in order (the notices' results last)."""
        await asyncio.gather(*(self._send(n) for n in await self.store.claim_notices(now=self.now(),
                                                                                      lease=self.lease)))
        await self._publish_due()

    async def _publish_due(self) -> None:
        for row in await self.store.claim_events(now=self.now(), lease=self.lease):
            try:
                await self.publisher.publish(row.event)
            except Exception as exc:  # noqa: BLE001 - kept in the outbox, tried again with backoff
                log.warning("publishing %s failed (attempt %d): %s", type(row.event).__name__, row.attempts + 1, exc)
                wait = min(2.0 ** row.attempts, 60.0)
                await self.store.event_failed(row.row_id, error=f"{type(exc).__name__}: {exc}"[:300],
                                              next_at=self.now() + timedelta(seconds=wait))
                return  # the broker is likely down: the rest waits for the next round, not a timeout each
            await self.store.event_sent(row.row_id)

    async def _send(self, notice: DeliveryRecord) -> None:
        inc = await self.store.get(notice.incident_id) if notice.incident_id else None
        with continued(inc.traceparent if inc else None, f"notice {notice.channel}", tracer=SCOPE, attributes={
                "safeguard.incident_id": notice.incident_id or "", "safeguard.attempt": notice.attempts + 1}) as span:
            ok = await self._deliver_notice(notice, inc)
            span.set_attribute("safeguard.ok", ok)

    async def _deliver_notice(self, notice: DeliveryRecord, inc: Incident | None) -> bool:
        """Send one notice and record the result (with its event); whether it went out."""
        attempts, common = notice.attempts + 1, {"service": inc.service if inc else "", "channel": notice.channel,
                                                 "incident_id": notice.incident_id, "recipient": notice.recipient}
        try:
            await self.sender.send(channel=cast(ChannelName, notice.channel), recipient=notice.recipient,
                                   message=notice.message, incident=inc)
        except Exception as exc:  # noqa: BLE001 - a failed notice is a result: recorded, published, redelivered
            error = f"{type(exc).__name__}: {exc}"[:300]
            expired = self.now() - notice.at >= timedelta(seconds=self.policy.webhook.expire_after)
            last = attempts >= self.policy.webhook.redeliveries or expired
            log.warning("notice to %s/%s failed (try %d%s): %s", notice.channel, notice.recipient, attempts,
                        ", giving up" if last else "", error)
            nxt = None if last else self.now() + timedelta(seconds=self.policy.webhook.redeliver_in(attempts))
            done = notice.model_copy(update={"ok": False, "error": error, "attempts": attempts, "next_at": nxt,
                                             "status": "failed" if last else "pending"})
            await self.store.notice_done(done, event=NotificationFailed(**common, error=error))
            return False
        done = notice.model_copy(update={"ok": True, "error": "", "attempts": attempts, "status": "sent",
                                         "next_at": None})
        await self.store.notice_done(done, event=NotificationDelivered(**common))
        return True
