"""The health service's watchdog: a Safeguard processor that stops answering fires `unresponsive` once, clears it
once it answers again, survives a restart of the health service, and loses nothing while Kafka is away."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.health.config import parse_config
from services.health.runner import ProbeRunner
from services.health.service import ProbeResult
from shared.events import TriggerCleared, TriggerFired
from shared.testing import InMemoryPublisher

PASS = ProbeResult("pass", 1.0, 1.0, "ms", "")
FAIL = ProbeResult("fail", 5000.0, None, None, "timed out after 5 s")


class Prober:
    def __init__(self) -> None:
        self.answers: dict[str, ProbeResult] = {}

    async def probe(self, target: Any, timeout_s: float) -> ProbeResult:
        return self.answers.get(target.name, PASS)


def runner(pub: InMemoryPublisher, prober: Prober, *, clock: Callable[[], float] = lambda: 1000.0,
           started: bool = True) -> ProbeRunner:
    """`started`: past the watchdog's start-up grace (30 s), as a health service that has run a while."""
    config = parse_config({"interval_seconds": 30, "down_after": 3, "up_after": 2, "targets": [
        {"name": "sla", "kind": "tcp", "port": 9, "watchdog": True},
        {"name": "shop", "kind": "tcp", "port": 9}]}, env={})
    r = ProbeRunner(config, prober=prober, publisher=pub, clock=clock)  # type: ignore[arg-type]
    if started:
        r.watchdog.quiet_until = 0.0
    return r


def triggers(pub: InMemoryPublisher) -> list[Any]:
    return [e for _, e in pub.published if isinstance(e, TriggerFired | TriggerCleared)]


async def cycles(r: ProbeRunner, n: int) -> None:
    for _ in range(n):
        await r.run_cycle()


async def test_a_hung_processor_fires_once_and_clears_once() -> None:
    pub, prober = InMemoryPublisher(), Prober()
    r = runner(pub, prober)
    await cycles(r, 2)
    prober.answers = {"sla": FAIL, "shop": FAIL}
    await cycles(r, 2)
    assert triggers(pub) == [], "not down yet: 2 failed checks of 3"
    await cycles(r, 4)
    [fired] = triggers(pub)  # once, though it stays down; `shop` is not watched
    assert isinstance(fired, TriggerFired) and fired.topic == "sla.triggers"
    assert (fired.service, fired.trigger, fired.instance, fired.value, fired.threshold) == ("sla", "unresponsive",
                                                                                         "sla", 3.0, 3.0)
    assert fired.episode_id.startswith("sla/unresponsive/") and fired.window_seconds == 90
    assert fired.first_bad_at is not None and fired.first_bad_at < fired.time
    assert "timed out after 5 s" in fired.detail

    prober.answers = {}
    await cycles(r, 1)
    assert len(triggers(pub)) == 1, "up needs 2 passed checks"
    await cycles(r, 3)
    fired_, cleared = triggers(pub)
    assert isinstance(cleared, TriggerCleared) and cleared.episode_id == fired.episode_id
    assert cleared.service == "sla" and cleared.trigger == "unresponsive"

    prober.answers = {"sla": FAIL}  # a second outage is a second episode
    await cycles(r, 3)
    again = triggers(pub)[-1]
    assert isinstance(again, TriggerFired) and again.episode_id != fired.episode_id


async def test_after_a_restart_the_open_episode_is_cleared_not_fired_again() -> None:
    pub, prober = InMemoryPublisher(), Prober()
    r = runner(pub, prober)
    r.watchdog.open_episode = lambda service: "sla/unresponsive/1700000000000" if service == "sla" else None
    prober.answers = {"sla": FAIL}
    await cycles(r, 4)
    assert triggers(pub) == [], "the feed says it is firing already"
    prober.answers = {}
    await cycles(r, 4)
    [cleared] = triggers(pub)
    assert isinstance(cleared, TriggerCleared) and cleared.episode_id == "sla/unresponsive/1700000000000"


async def test_a_trigger_kafka_did_not_take_is_sent_with_the_next_verdict() -> None:
    pub, prober = InMemoryPublisher(), Prober()
    r = runner(pub, prober)
    await cycles(r, 1)
    prober.answers = {"sla": FAIL}
    pub.fail_with = ConnectionError("broker away")
    await cycles(r, 3)
    assert r.publish_failures > 0 and triggers(pub) == []
    pub.fail_with = None
    await cycles(r, 1)
    [fired] = triggers(pub)
    assert isinstance(fired, TriggerFired)
    prober.answers = {}
    pub.fail_with = ConnectionError("broker away")
    await cycles(r, 2)
    pub.fail_with = None
    await cycles(r, 1)
    cleared = triggers(pub)[-1]
    assert isinstance(cleared, TriggerCleared) and cleared.episode_id == fired.episode_id


async def test_nothing_is_fired_until_the_feed_has_had_time_to_read_the_open_episodes() -> None:
    """Started while the processor is down: its feed may not yet have read the episode fired before the restart."""
    now = [1000.0]
    pub, prober = InMemoryPublisher(), Prober()
    r = runner(pub, prober, clock=lambda: now[0], started=False)
    known: dict[str, str] = {}
    r.watchdog.open_episode = known.get
    prober.answers = {"sla": FAIL}
    await cycles(r, 4)
    assert r.states["sla"].state == "down" and triggers(pub) == [], "within the 30 s grace"
    known["sla"] = "sla/unresponsive/1700000000000"  # the feed has read it meanwhile
    now[0] += 31
    await cycles(r, 2)
    assert triggers(pub) == [], "the episode before the restart is the one that is open"

    pub2, prober2 = InMemoryPublisher(), Prober()
    r2 = runner(pub2, prober2, clock=lambda: now[0], started=False)
    prober2.answers = {"sla": FAIL}
    await cycles(r2, 4)
    assert triggers(pub2) == []
    now[0] += 31
    await cycles(r2, 1)
    [fired] = triggers(pub2)
    assert isinstance(fired, TriggerFired), "nothing known open: fired once the grace is over"
