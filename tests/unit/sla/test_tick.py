"""The core on the clock (`SlaCore.tick`): windows age out without new data (issue 14)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.sla.policy import SlaPolicy
from services.sla.service import SlaCore
from shared.events import Event, TriggerCleared, TriggerFired
from shared.testing import FakeClock
from tests.unit.sla.helpers import T0, process, requests

IDLE = 3.0


class CountingDict(dict[str, Any]):
    """A status mapping that counts writes (a write is a changelog message in the app)."""

    writes = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def setup() -> tuple[SlaCore, FakeClock, CountingDict]:
    """A core whose budget_burn is off (a 50 % burst fires it too, and its 5 m window ages out slowly)."""
    clock, status = FakeClock(T0.timestamp()), CountingDict()
    policy = SlaPolicy.model_validate({"triggers": {"budget_burn": {
        "enabled": False, "threshold": 1.0, "window": 300, "min_samples": 10}}})
    return SlaCore(policy=policy, buckets={}, status=status, clock=clock), clock, status


def fire_error_rate(core: SlaCore, clock: FakeClock, *, seconds: int = 20) -> list[Event]:
    """Clean traffic then 50 % errors, each report processed at the end of its second."""
    out: list[Event] = []
    for s in range(seconds):
        clock.now = T0.timestamp() + s + 1
        out += core.observe_requests(requests(s, errors=50 if s >= seconds // 2 else 0))
    return out


def tick_until(core: SlaCore, clock: FakeClock, *, until: float) -> list[tuple[float, Event]]:
    out = []
    while clock.now < until:
        clock.advance(1.0)
        out += [(clock.now - T0.timestamp(), e) for e in core.tick("shop", idle_after=IDLE)
                if isinstance(e, TriggerFired | TriggerCleared)]
    return out


def test_a_firing_error_rate_clears_on_the_clock_when_requests_stop() -> None:
    core, clock, _ = setup()
    fired = [e for e in fire_error_rate(core, clock) if isinstance(e, TriggerFired)]
    assert [e.trigger for e in fired] == ["error_rate_high"]
    out = tick_until(core, clock, until=T0.timestamp() + 60)
    assert [(at, type(e), e.trigger) for at, e in out] == [(35.0, TriggerCleared, "error_rate_high")]  # type: ignore[attr-defined]
    cleared = out[0][1]
    assert isinstance(cleared, TriggerCleared) and cleared.episode_id == fired[0].episode_id
    assert cleared.time == T0 + timedelta(seconds=35)  # last data ended at 20 s, window empty at 25 s, held 10 s
    assert core.pending("shop") == [fired[0], cleared]  # in the outbox until published
    assert core.status["shop"]["triggers"]["error_rate_high"]["phase"] == "ok"
    assert core.status["shop"]["clears"]["error_rate_high"]["reason"] == \
        "no data: 0 samples in the last 5 s (fewer than 20) for 10 s"


def test_requests_coming_back_during_the_no_data_hold_keep_the_episode() -> None:
    core, clock, _ = setup()
    fire_error_rate(core, clock)
    assert tick_until(core, clock, until=T0.timestamp() + 30) == []  # no data since 25 s: clearing
    out = core.observe_requests(requests(29, errors=50))  # errors again, within the hold
    assert not [e for e in out if isinstance(e, TriggerFired | TriggerCleared)] and core.status["shop"]["triggers"]["error_rate_high"]["phase"] == "firing"
    episode = core.status["shop"]["triggers"]["error_rate_high"]["episode_id"]
    assert tick_until(core, clock, until=T0.timestamp() + 38) == []  # data came at 30 s: not idle before 33 s
    assert core.status["shop"]["triggers"]["error_rate_high"]["episode_id"] == episode


def test_the_tick_waits_while_records_flow_and_writes_nothing_when_all_is_ok() -> None:
    core, clock, status = setup()
    fire_error_rate(core, clock)
    clock.advance(IDLE - 0.5)
    writes = status.writes
    assert core.tick("shop", idle_after=IDLE) == [] and status.writes == writes  # not silent long enough
    tick_until(core, clock, until=T0.timestamp() + 40)
    assert core.status["shop"]["triggers"]["error_rate_high"]["phase"] == "ok"
    writes = status.writes
    assert tick_until(core, clock, until=T0.timestamp() + 100) == [] and status.writes == writes
    assert core.tick("nobody", idle_after=IDLE) == []


def test_memory_high_of_an_instance_that_stopped_reporting_clears() -> None:
    core, clock, _ = setup()
    out: list[Event] = []
    for s in (0, 5):
        clock.now = T0.timestamp() + s
        out += core.observe_process(process(s, memory=95.0))
    assert [e.trigger for e in out if isinstance(e, TriggerFired)] == ["memory_high"]  # type: ignore[attr-defined]
    cleared = tick_until(core, clock, until=T0.timestamp() + 60)
    # at 15 s the 0 s report left the 15 s window: one report, fewer than 2; no data held 10 s
    assert [(at, e.trigger) for at, e in cleared] == [(25.0, "memory_high")]  # type: ignore[attr-defined]


def test_silence_counts_from_when_the_worker_took_the_partition() -> None:
    core, clock, _ = setup()
    fire_error_rate(core, clock)
    clock.advance(60.0)  # a restart: the records of the last minute wait in Kafka
    taken = clock.now
    assert core.tick("shop", idle_after=IDLE, not_before=taken) == []
    assert core.status["shop"]["triggers"]["error_rate_high"]["phase"] == "firing"
    clock.advance(IDLE)
    assert core.tick("shop", idle_after=IDLE, not_before=taken) == []  # judged now: no data, clearing
    assert core.status["shop"]["triggers"]["error_rate_high"]["phase"] == "clearing"
