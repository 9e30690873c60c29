"""Blue/green switch time and failed requests: HAProxy's runtime API against a config reload.

A private HAProxy on stack/haproxy.cfg.in with two colour processes behind it (deploy/traffic/lab.py),
8 keep-alive clients sending GETs back to back on loopback. Measured in the same run:
- baseline: the same loop with no switch (requests, failures, p50 / p99 latency);
- switch and rollback through the admin socket (deploy/traffic/haproxy.py): the call, the time from
  the call to the first answer from the new colour, and to the last answer from the old one (after
  which 100% come from the new colour), failed requests in the window;
- the classic way: a new config and `haproxy -c` then `haproxy -sf <old pid>` (and with `-x <socket>`,
  which hands the listening sockets over), measured the same.
Targets (issue 11): switch and rollback under 100 ms with 0 failed; the runbook allows 30 s and 1 min.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bench.report import record, runbook_limit
from deploy.traffic import TrafficSwitch, make_traffic
from deploy.traffic.lab import ClientLoop, Lab

CLIENTS = 8
ROUNDS = 5
RELOADS = 3
SETTLE = 1.0


@dataclass(frozen=True, kw_only=True)
class Shift:
    call: float
    first: float
    full: float
    failed: int
    errors: tuple[str, ...] = ()


async def shift(loop: ClientLoop, action: Callable[[], Awaitable[object]], *, target: str, window: float) -> Shift:
    """Run `action`, wait `window`, and read the client loop's answers from the start of the call."""
    t0 = time.perf_counter()
    await action()
    call = time.perf_counter() - t0
    await asyncio.sleep(window)
    after = [s for s in loop.samples if s.done >= t0]
    first = min((s.done for s in after if s.colour == target), default=float("inf")) - t0
    last_old = max((s.done for s in after if s.colour and s.colour != target), default=t0) - t0
    failed = loop.failures(since=t0 - 0.05, until=t0 + window)
    return Shift(call=call, first=first, full=max(first, last_old), failed=len(failed),
                 errors=tuple((s.error or "").split("(")[0] for s in failed))


async def aside(call: Coroutine[Any, Any, None]) -> None:
    """The switch on a loop of its own (a thread), as the operator's process would be: not queued
    behind the client loop's tasks."""
    await asyncio.to_thread(asyncio.run, call)


def kinds(shifts: list[Shift]) -> str:
    counts = Counter(e for s in shifts for e in s.errors)
    return f" ({', '.join(f'{n} {e}' for e, n in counts.most_common())})" if counts else ""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report(name: str, shifts: list[Shift]) -> Shift:
    median = Shift(call=statistics.median(s.call for s in shifts), first=statistics.median(s.first for s in shifts),
                   full=statistics.median(s.full for s in shifts), failed=sum(s.failed for s in shifts))
    worst = max(s.full for s in shifts)
    record(f"{name}: 100% on the new colour, median of {len(shifts)}", median.full * 1000, "ms",
           spread=(min(s.full for s in shifts) * 1000, worst * 1000), note=f"failed requests {median.failed}")
    print(f"{name} (x{len(shifts)}, median): call {ms(median.call)}, first answer from the new colour "
          f"{ms(median.first)}, 100% from it after {ms(median.full)} (worst {ms(worst)}), "
          f"failed requests {median.failed} in all{kinds(shifts)}", flush=True)
    return median


async def baseline(loop: ClientLoop, seconds: float) -> float:
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    samples = [s for s in loop.samples if t0 <= s.sent <= t0 + seconds]
    latencies = sorted(s.done - s.sent for s in samples)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(f"baseline, no switch ({seconds:.0f} s): {len(samples)} requests ({len(samples) / seconds:.0f}/s), "
          f"failed {len(loop.failures(since=t0, until=t0 + seconds))}, p50 {ms(p50)}, p99 {ms(p99)}", flush=True)
    return p50


async def runtime_rounds(loop: ClientLoop, traffic: TrafficSwitch) -> tuple[Shift, Shift]:
    switches, rollbacks = [], []
    for _ in range(ROUNDS):
        switches.append(await shift(loop, lambda: aside(traffic.switch("green")), target="green", window=SETTLE))
        rollbacks.append(await shift(loop, lambda: aside(traffic.switch("blue")), target="blue", window=SETTLE))
    return report("runtime API switch blue -> green", switches), report("runtime API rollback green -> blue", rollbacks)


async def reload_rounds(loop: ClientLoop, lab: Lab, traffic: TrafficSwitch, *, transfer: bool) -> Shift:
    """Green, blue, green... each by a new config file and a new HAProxy process; blue again after."""
    shifts = []
    for i in range(RELOADS):
        colour, other = ("green", "blue") if i % 2 == 0 else ("blue", "green")
        config = lab.haproxy.config(weights={colour: 100, other: 0})

        async def reload(config: str = config) -> None:
            await asyncio.to_thread(lab.haproxy.reload, config, transfer=transfer)

        shifts.append(await shift(loop, reload, target=colour, window=2 * SETTLE))
    await traffic.switch("blue")
    await asyncio.sleep(SETTLE)
    return report(f"reload (haproxy -c, then {'-x ' if transfer else ''}-sf)", shifts)


async def main() -> None:
    with Lab() as lab:
        traffic = make_traffic(lab.spec())
        print(f"{CLIENTS} keep-alive clients on loopback -> private HAProxy (stack/haproxy.cfg.in) -> blue | green",
              flush=True)
        async with ClientLoop(url=lab.url, keepalive=CLIENTS, fresh=0) as loop:
            await asyncio.sleep(0.5)
            p50 = await baseline(loop, 2.0)
            switch, rollback = await runtime_rounds(loop, traffic)
            runbook_limit("switch (runtime API): time to 100%", switch.full, limit_s=30, what="switch within 30 s")
            runbook_limit("rollback (runtime API): time to 100%", rollback.full, limit_s=60,
                          what="rollback within 1 min")
            classic = await reload_rounds(loop, lab, traffic, transfer=False)
            handover = await reload_rounds(loop, lab, traffic, transfer=True)
            during = sorted(s.done - s.sent for s in loop.samples)
        print(f"p50 latency over the whole run {ms(during[len(during) // 2])} vs baseline {ms(p50)}")
        print(f"ratios: reload -sf / runtime switch, time to 100%: {classic.full / switch.full:.0f}x; "
              f"reload -x -sf / runtime switch: {handover.full / switch.full:.0f}x; rollback / switch: "
              f"{rollback.full / switch.full:.2f}x")
        met = max(switch.full, rollback.full) < 0.1 and switch.failed == rollback.failed == 0
        for name, shift_ in (("switch (runtime API)", switch), ("rollback (runtime API)", rollback)):
            record(f"{name}: time to 100%", shift_.full * 1000, "ms", baseline="reload: haproxy -c, then -sf",
                   baseline_value=classic.full * 1000, lower_is_better=True, limit=100,
                   note=f"failed {shift_.failed}; target < 100 ms, 0 failed")
        print(f"target (switch and rollback under 100 ms, 0 failed): {'met' if met else 'MISSED'}; "
              f"runbook allows 30 s / 60 s: {30 / switch.full:.0f}x / {60 / rollback.full:.0f}x inside")
