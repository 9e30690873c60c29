"""What recording exposures adds to one evaluation (CPU, in process): the flags service's OFREP recorder and
the Python SDK's buffer, each against the evaluation alone (the baseline) in the same run, with distinct
targeting keys (the worst case: a hash and a new set entry each time).

    python -m bench exposure_cost
"""

from __future__ import annotations

import time
from typing import Any

from bench.report import record
from shared.flags.evaluator import FlagSpec, compile_flag, evaluate
from sdk.flags.exposure import ExposureBuffer
from services.flags.exposure import ExposureRecorder
from services.flags.rules import rollout_targeting

N = 50_000
FLAG = compile_flag(FlagSpec("checkout", {"state": "ENABLED", "variants": {"on": True, "off": False},
                                          "defaultVariant": "off", "targeting": rollout_targeting("on", "off", 30)}))


def _per_call(fn: Any, contexts: list[dict[str, str]]) -> float:
    t0 = time.perf_counter()
    for ctx in contexts:
        fn(ctx)
    return (time.perf_counter() - t0) / len(contexts) * 1e6


async def main() -> None:
    contexts = [{"targetingKey": f"user-{i}"} for i in range(N)]
    recorder = ExposureRecorder(None, max_entries=10 * N)  # type: ignore[arg-type]  # no flush here
    buffer = ExposureBuffer(max_entries=10 * N)
    base = _per_call(lambda c: evaluate(FLAG, c), contexts)
    service = _per_call(lambda c: recorder.saw(targeting_key=c["targetingKey"], found=[(FLAG, evaluate(FLAG, c))]),
                        contexts)
    sdk = _per_call(lambda c: buffer.saw(FLAG, c, evaluate(FLAG, c)), contexts)
    print(f"{N:,} distinct targeting keys, a 30 % rollout flag (fractional rule)")
    print(f"  evaluate alone (baseline)        {base:6.2f} µs/call")
    print(f"  + flags service recorder (OFREP) {service:6.2f} µs/call  x{service / base:.2f}  (+{service - base:.2f} µs)")
    print(f"  + SDK buffer (FlagClient)        {sdk:6.2f} µs/call  x{sdk / base:.2f}  (+{sdk - base:.2f} µs)")
    record("evaluate + flags service exposure recorder", service, "µs/call", baseline="evaluate alone",
           baseline_value=base, lower_is_better=True)
    record("evaluate + SDK exposure buffer", sdk, "µs/call", baseline="evaluate alone", baseline_value=base,
           lower_is_better=True)
