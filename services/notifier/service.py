"""The core of the notifier: incidents from triggers, escalation L1-L4, notices, reports.

No framework imports: the publisher, the store, the sender and the clock are ports, so unit tests
drive it with fakes.

Every change of an incident is one `Change` written in one transaction (the incident, its timeline,
the events to publish, the notices to deliver); nothing is kept in memory, so a failed write leaves
nothing behind and the consumer's retry does the whole change, and a restarted process or another
instance reads the same state (escalation deadlines included). Events and notices are sent after
the write by `dispatch()` (right away, and by the relay tick for what failed: Kafka down, a webhook
refusing), each claimed with a lease so two instances never send one twice.

One module per job, joined here into the one service the edges call:
- `core.py`: the ports, writing a change, finding an incident, the timeline and notices a change carries;
- `opening.py`: opening an incident from a trigger or a rollback, or joining one already open;
- `escalation.py`: escalation L1-L4, repeated pages, acknowledgement;
- `resolution.py`: recovery's actions, mitigation, resolution and the post-incident report;
- `relay.py`: sending the notices and publishing the events a change wrote.
"""

from __future__ import annotations

from services.notifier.core import Conflict, NotFound, StaleIncident, incident_id_for
from services.notifier.escalation import Escalation
from services.notifier.opening import Opening
from services.notifier.resolution import Resolution

__all__ = ["NotifierService", "NotFound", "Conflict", "StaleIncident", "incident_id_for"]


class NotifierService(Opening, Escalation, Resolution):
    """The notifier's core: `sla.triggers` (`open_incident`, `resolve_on_clear`), `recovery.actions`
    (`record_action`, `mitigate`, `escalate_on_failure`), `deploy.events` (`record_rollback`), operators
    (`acknowledge`, `resolve`, `get`) and the periodic `tick` (escalation, then the relay)."""
