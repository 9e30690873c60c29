"""Finding 11 of issue 10 (last sentence): a RestartProcess for every instance restarts them one at a time."""

from __future__ import annotations

import asyncio

from sdk.commands import CommandHandlers, LocalRestartGate
from shared.events import RestartProcess


def _fleet(gate: object, exited: list[str], **kw: float) -> list[CommandHandlers]:
    fleet = []
    for name in ("blue", "green", "red"):
        h = CommandHandlers(service="demo", instance=name, exit_process=lambda n=name: exited.append(n),
                            exit_delay_s=0.0)
        h.restart_gate, h.poll_s = gate, 0.01  # type: ignore[assignment]
        for k, v in kw.items():
            setattr(h, k, v)
        fleet.append(h)
    return fleet


async def test_a_broadcast_restart_goes_one_instance_at_a_time() -> None:
    exited: list[str] = []
    fleet = _fleet(LocalRestartGate(), exited)
    for h in fleet:
        await h.restart_process(RestartProcess(service="demo"))
    await asyncio.sleep(0.1)
    assert len(exited) == 1  # the others wait for their turn
    first = next(h for h in fleet if h.instance == exited[0])
    await first.back_up()  # its new process is serving: next one
    await asyncio.sleep(0.1)
    assert len(exited) == 2
    await next(h for h in fleet if h.instance == exited[1]).back_up()
    await asyncio.sleep(0.1)
    assert sorted(exited) == ["blue", "green", "red"]
    for h in fleet:
        h.stop_waiting()


async def test_a_turn_that_never_comes_back_expires() -> None:
    exited: list[str] = []
    fleet = _fleet(LocalRestartGate(), exited, turn_s=0.2)
    for h in fleet:
        await h.restart_process(RestartProcess(service="demo"))
    await asyncio.sleep(0.1)
    assert len(exited) == 1  # and it never reports back
    await asyncio.sleep(0.25)
    assert len(exited) == 2  # the turn expired: bounded wait


async def test_an_addressed_restart_does_not_wait() -> None:
    exited: list[str] = []
    gate = LocalRestartGate()
    await gate.acquire(instance="green", ttl_s=60)
    [blue, *_] = _fleet(gate, exited)
    await blue.restart_process(RestartProcess(service="demo", instance="blue"))
    await asyncio.sleep(0.05)
    assert exited == ["blue"]
