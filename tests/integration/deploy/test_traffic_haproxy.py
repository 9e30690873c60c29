"""The HAProxy traffic switch, for real: a private HAProxy on stack/haproxy.cfg.in (its demo backend),
two colour processes behind it, a loop of keep-alive and new-connection clients on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from deploy.traffic import TrafficError, TrafficSwitch, make_traffic
from deploy.traffic.lab import ClientLoop, Lab, free_port

# HAProxy applies a weight change at its next scheduler pass, which may come just after the CLI answered
GRACE = 0.05
LAG = 6  # and roundrobin may pick the old server for the rest of its round: a few requests (see `_settled`)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


@pytest.fixture
async def traffic(lab: Lab) -> AsyncIterator[TrafficSwitch]:
    switch = make_traffic(lab.spec())
    for colour, backend in lab.backends.items():
        if backend.proc is None:
            backend.start()
        await until(lambda c=colour: switch.healthy(c), what=f"{colour} UP")  # type: ignore[misc]
    await switch.switch("blue")
    yield switch


async def until(check: Callable[[], Awaitable[bool]], *, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        await asyncio.sleep(0.1)


async def test_switch_canary_and_rollback_lose_no_request(lab: Lab, traffic: TrafficSwitch) -> None:
    async with ClientLoop(url=lab.url, keepalive=4, fresh=2) as loop:
        await loop.wait_for(200)
        marks = []
        for weights in ({"green": 100}, {"blue": 90, "green": 10}, {"blue": 100}):
            marks.append(time.perf_counter())
            await traffic.set_weights(weights)
            marks.append(time.perf_counter())
            await loop.wait_for(400)
        marks.append(time.perf_counter())
    assert loop.failures() == []
    assert set(loop.colours(until=marks[0])) == {"blue"}
    assert _settled(loop, marks[1], marks[2]) == {"green"}, _late(loop, marks[1], "green", marks[2])
    assert set(loop.colours(since=marks[3] + GRACE, until=marks[4])) == {"blue", "green"}
    assert _settled(loop, marks[5]) == {"blue"}, _late(loop, marks[5], "blue")
    assert await traffic.weights() == {"blue": 100, "green": 0}


def _settled(loop: ClientLoop, switched: float, until: float = float("inf")) -> set[str]:
    """The colours answering requests sent after the switch (and answered before the next one), once it has
    settled: past GRACE and past the first LAG requests. HAProxy's `set weight` "takes effect immediately, though
    certain LB algorithms require a certain amount of requests to consider changes" (its management guide):
    roundrobin may still pick the old server until its current round ends. Under load those few requests can come
    later than GRACE."""
    return {str(x.colour) for i, x in enumerate(loop.answered(switched, until))
            if i >= LAG and x.sent >= switched + GRACE}


def _late(loop: ClientLoop, switched: float, colour: str, until: float = float("inf")) -> str:
    """The answers from the old colour in the window: ms after the switch, when sent and when answered."""
    late = [f"sent +{(x.sent - switched) * 1000:.1f} ms, answered +{(x.done - switched) * 1000:.1f} ms: {x.colour}"
            for x in loop.answered(switched, until) if x.colour != colour]
    return f"{len(late)} answer(s) not from {colour} after the switch: {late[:10]}"


async def test_canary_share_follows_the_weights(lab: Lab, traffic: TrafficSwitch) -> None:
    await traffic.set_weights({"blue": 90, "green": 10})
    assert await traffic.weights() == {"blue": 90, "green": 10}
    async with ClientLoop(url=lab.url, keepalive=4, fresh=2) as loop:
        start = time.perf_counter()
        await loop.wait_for(1000)
    counts = loop.colours(since=start)
    share = counts.get("green", 0) / sum(counts.values())
    assert 0.07 <= share <= 0.13, counts
    assert loop.failures() == []


async def test_a_colour_dying_mid_canary_loses_no_request_and_is_not_healthy(lab: Lab, traffic: TrafficSwitch) -> None:
    await traffic.set_weights({"blue": 50, "green": 50})
    async with ClientLoop(url=lab.url) as loop:
        await loop.wait_for(200)
        killed = time.perf_counter()
        lab.backends["green"].kill()
        await until(lambda: _not(traffic.healthy("green")), what="green DOWN")
        seen_down = time.perf_counter()
        await loop.wait_for(200)
    assert_only_in_flight_lost(loop, killed=killed)
    assert set(loop.colours(since=seen_down)) == {"blue"}
    assert await traffic.healthy("blue")
    with pytest.raises(TrafficError, match="green down"):
        await traffic.switch("green")
    with pytest.raises(TrafficError, match="nothing changed"):
        await traffic.set_weights({"blue": 90, "green": 10})
    assert await traffic.weights() == {"blue": 50, "green": 50}


async def test_the_live_colour_dying_fails_over_to_the_other(lab: Lab, traffic: TrafficSwitch) -> None:
    async with ClientLoop(url=lab.url) as loop:
        await loop.wait_for(200)
        killed = time.perf_counter()
        lab.backends["blue"].kill()
        await until(lambda: _not(traffic.healthy("blue")), what="blue DOWN")
        seen_down = time.perf_counter()
        await loop.wait_for(200)
    assert_only_in_flight_lost(loop, killed=killed)
    assert "green" in loop.colours(since=killed)
    assert set(loop.colours(since=seen_down)) == {"green"}
    assert await traffic.weights() == {"blue": 100, "green": 0}


@pytest.mark.parametrize(("weights", "error"), [
    ({"blue": 60, "green": 30}, "add up to 100"),
    ({"blue": 101}, "0..100"),
    ({"blue": -10, "green": 110}, "0..100"),
    ({"purple": 100}, "unknown colour"),
    ({"blue": 50.0, "green": 50}, "whole percent"),
])
async def test_bad_weights_are_refused_and_change_nothing(traffic: TrafficSwitch, weights: dict[str, int],
                                                          error: str) -> None:
    await traffic.set_weights({"blue": 70, "green": 30})
    with pytest.raises(ValueError, match=error):
        await traffic.set_weights(weights)
    with pytest.raises(ValueError, match="unknown colour"):
        await traffic.switch("purple")
    assert await traffic.weights() == {"blue": 70, "green": 30}


async def test_a_missing_or_closed_socket_is_a_clear_error(lab: Lab) -> None:
    missing = str(lab.workdir / "no-such.sock")
    with pytest.raises(TrafficError, match=f"{missing} does not exist"):
        await make_traffic(lab.spec(socket=missing)).weights()
    with pytest.raises(TrafficError, match="refused the connection"):
        await make_traffic(lab.spec(socket=f"tcp:127.0.0.1:{free_port()}")).switch("blue")
    with pytest.raises(TrafficError, match="expected tcp:HOST:PORT"):
        await make_traffic(lab.spec(socket="tcp:nowhere")).weights()


async def test_an_unknown_backend_or_server_is_a_clear_error(lab: Lab) -> None:
    with pytest.raises(TrafficError, match="backend 'nope'"):
        await make_traffic(lab.spec(backend="nope")).weights()
    with pytest.raises(TrafficError, match="no server for green \\(server 'teal'\\)"):
        await make_traffic(lab.spec(servers={"green": "teal"})).healthy("blue")


async def test_a_backup_colour_is_a_clear_error(lab: Lab, traffic: TrafficSwitch) -> None:
    old_style = lab.haproxy.config().replace("check weight 0\n", "check weight 0 backup\n", 1)
    assert "backup" in old_style
    lab.haproxy.reload(old_style)
    try:
        async def refused() -> bool:
            try:
                await traffic.weights()
            except TrafficError as exc:
                assert "demo/green is `backup`" in str(exc)
                return True
            return False
        await until(refused, what="the backup config refused")
    finally:
        lab.haproxy.reload(lab.haproxy.config())
        await until(lambda: _succeeds(traffic.weights()), what="the weighted config back")


def assert_only_in_flight_lost(loop: ClientLoop, *, killed: float) -> None:
    """SIGKILL may cut an answer HAProxy already began to forward: that request cannot be retried.
    Every request sent after the kill is answered (retried on the other colour when refused)."""
    assert loop.failures(since=killed) == []
    assert len(loop.failures()) <= loop.keepalive + loop.fresh


async def _succeeds(call: Awaitable[object]) -> bool:
    try:
        await call
    except TrafficError:
        return False
    return True


async def _not(check: Awaitable[bool]) -> bool:
    return not await check


async def test_weights_survive_a_haproxy_restart_through_the_saved_server_state(lab: Lab, traffic: TrafficSwitch) -> None:
    """What stack/up.sh and down.sh do around a restart: `show servers state` into the server-state-file
    the template names, and the demo backend loads it back (else `make up` would move traffic to blue)."""
    import sys

    from deploy.app import ROOT

    await traffic.switch("green")
    save = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "stack" / "stackutil.py"),
                                                "haproxy-save-state", lab.haproxy.socket,
                                                lab.haproxy.values["HAPROXY_STATE"])
    assert await save.wait() == 0
    lab.haproxy.stop()
    lab.haproxy.start()
    await until(lambda: traffic.healthy("green"), what="green UP after the restart")
    assert await traffic.weights() == {"blue": 0, "green": 100}
