"""What one fault measured, and whether it met the targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chaos.faults import Fault
from chaos.observe import TriggerSeen
from chaos.phase import KILL_DEADLINE_S, Phase

__all__ = ["FaultResult", "TriggerCheck", "SLA_CATCH_UP_S"]

SLA_CATCH_UP_S = 30.0  # the SLA processor must have counted a fault's telemetry this soon after it


@dataclass(frozen=True)
class TriggerCheck:
    service: str
    trigger: str
    fired: int
    cleared: int
    expected: bool = True

    @classmethod
    def of(cls, service: str, trigger: str, seen: Sequence[TriggerSeen], *, expected: bool = True) -> TriggerCheck:
        mine = [t for t in seen if t.service == service and t.trigger == trigger]
        return cls(service, trigger, len({t.episode for t in mine if t.kind == "fired"}),
                   len({t.episode for t in mine if t.kind == "cleared"}), expected)

    @property
    def ok(self) -> bool:
        return self.fired == 1 and self.cleared == 1 if self.expected else True

    def __str__(self) -> str:
        mark = "" if self.expected else "also "
        return f"{mark}{self.service}/{self.trigger} fired {self.fired} cleared {self.cleared}"


@dataclass(frozen=True)
class FaultResult:
    fault: str
    title: str
    seconds: float
    back_s: float | None          # until the program ran again (kill / restart) or the fault was undone
    produced: int                 # RequestsObserved the app instances handed to the SDK publisher
    produced_requests: int
    sdk_dropped: int              # of those, the SDK gave up on (RequestRecorder drops the window)
    in_topic: int                 # distinct ones read back from telemetry.requests
    duplicates: int               # extra copies in the topic
    topic_requests: int
    sla_requests: int | None      # what the SLA processor counted (GET /api/sla/<service> last_5m.count)
    sla_settle_s: float           # how long after the phase's last event the SLA count took to settle
    sdk_evals: int
    sdk_failures: int
    ofrep_evals: int
    ofrep_failures: int
    ofrep_4xx: int
    kill_codes: list[str]
    kill_accept_s: float | None   # from the first kill request to the first 2xx
    observers: list[str]
    seen_s: dict[str, float]      # observer -> seconds from the first kill request to serving the kill
    reverted: dict[str, int]
    stale: dict[str, float]       # observer -> its last "on" answer, seconds after the kill could be made (and,
                                  # for a hung flags instance, after HAProxy took it out: `hung_until`)
    kill_grace_s: float           # when the fault is the flags process: seconds until it answered again
    healthy_s: float | None       # from undoing the fault to /api/health pass and every /healthz 200
    unhealthy: list[str]
    triggers: list[TriggerCheck]
    failures: list[str] = field(default_factory=list)
    demo: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, *, fault: Fault, phase: Phase, seconds: float, started: float, restored: float, back: float | None,
           healthy_at: float | None, kill_grace_s: float, unhealthy: list[str], triggers: list[TriggerCheck], produced: int,
           produced_requests: int, sdk_dropped: int, in_topic: int, duplicates: int, topic_requests: int,
           sla_requests: int | None, sla_settle_s: float, hung_until: float | None = None) -> FaultResult:
        kill_at = phase.kill_at or started
        accept = None if phase.kill_ok_at is None else phase.kill_ok_at - kill_at
        ev = phase.evals
        return cls(
            fault=fault.slug, title=fault.title, seconds=seconds, back_s=back, produced=produced,
            produced_requests=produced_requests, sdk_dropped=sdk_dropped, in_topic=in_topic, duplicates=duplicates,
            topic_requests=topic_requests, sla_requests=sla_requests, sla_settle_s=sla_settle_s, sdk_evals=ev["sdk"], sdk_failures=ev["sdk_fail"],
            ofrep_evals=ev["ofrep"], ofrep_failures=ev["ofrep_fail"], ofrep_4xx=ev["ofrep_4xx"],
            kill_codes=phase.kill_codes,
            kill_accept_s=accept,
            observers=sorted(phase.observers), seen_s={k: v - kill_at for k, v in sorted(phase.seen.items())},
            reverted=dict(phase.reverted), kill_grace_s=kill_grace_s,
            stale=_stale(phase, kill_at=kill_at, base=max(kill_at + ((accept or 0.0) if kill_grace_s else 0.0),
                                                          hung_until or 0.0)),
            healthy_s=None if healthy_at is None else max(0.0, healthy_at - restored),
            unhealthy=unhealthy, triggers=triggers, failures=phase.failures,
            demo={k.removeprefix("demo_"): v for k, v in sorted(ev.items()) if k.startswith("demo_")},
        )

    # ---- targets -------------------------------------------------------------------------
    @property
    def lost(self) -> int:
        return self.produced - self.in_topic

    @property
    def sla_delta(self) -> int | None:
        return None if self.sla_requests is None else self.sla_requests - self.topic_requests

    @property
    def kill_seen_by_all(self) -> bool:
        return bool(self.observers) and set(self.observers) <= set(self.seen_s) and not self.reverted

    @property
    def kill_in_time(self) -> bool:
        """Accepted at the first try (or, when the fault is the flags process itself, as soon as it is back)."""
        if self.kill_accept_s is None:
            return False
        if self.kill_grace_s:
            return self.kill_accept_s <= self.kill_grace_s + KILL_DEADLINE_S
        return self.kill_codes[0].startswith("2")

    def missed(self) -> list[str]:
        """The targets this fault did not meet (empty: all met)."""
        out = []
        if self.lost:
            out.append(f"{self.lost} events lost")
        if self.duplicates:
            out.append(f"{self.duplicates} duplicated in the topic")
        if self.sla_delta:
            out.append(f"SLA counted {self.sla_delta:+d} requests")
        if self.sla_requests is None:
            out.append(f"the SLA processor had not counted the fault's requests {self.sla_settle_s:.0f} s after it")
        elif self.sla_settle_s > SLA_CATCH_UP_S:
            out.append(f"the SLA processor counted the fault's requests only {self.sla_settle_s:.0f} s after it")
        if self.sdk_failures or self.ofrep_failures:
            out.append(f"{self.sdk_failures + self.ofrep_failures} evaluation failures")
        if not self.kill_in_time:
            out.append(f"kill answered {self.kill_codes[0] if self.kill_codes else '-'}"
                       + ("" if self.kill_accept_s is None else f", accepted after {self.kill_accept_s:.1f} s"))
        if not self.kill_seen_by_all:
            out.append("kill not seen by every SDK" + (" (reverted)" if self.reverted else ""))
        if self.stale:
            out.append(f"flag still on {KILL_DEADLINE_S:g} s after the kill ({', '.join(sorted(self.stale))})")
        if self.healthy_s is None:
            out.append("not healthy again")
        out += [f"{t.service}/{t.trigger} fired {t.fired} cleared {t.cleared}" for t in self.triggers if not t.ok]
        return out


def _stale(phase: Phase, *, kill_at: float, base: float) -> dict[str, float]:
    """Observers that still served "on" more than KILL_DEADLINE_S after `base` (the kill was sent, or
    accepted when the flags process itself was down), with how long after `base`."""
    return {k: round(t - base, 2) for k, t in sorted(phase.last_on.items()) if t >= kill_at and t - base > KILL_DEADLINE_S}
