"""`python -m chaos [fault ...]`: run the faults (all by default) against the native stack,
print the table and write it into docs/chaos.md. CHAOS_FAULT_SECONDS overrides the 30 s."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

from chaos.faults import FAULTS, select
from chaos.report import render, write_docs
from chaos.result import FaultResult
from chaos.runner import Runner
from chaos.stack import Stack, StackError
from shared.logging import quiet_repeats


async def run(names: list[str] | None, *, seconds: float) -> tuple[list[FaultResult], float]:
    stack = Stack.load()
    if not await stack.alive():
        raise StackError("the native stack's supervisord is not running: `make up` first")
    faults = select(names)
    t0 = time.monotonic()
    results: list[FaultResult] = []
    async with Runner(stack, seconds=seconds).running() as runner:
        if not await runner.wait_healthy(120):
            raise StackError("the stack is not healthy (/api/health, every /healthz): not faulting it")
        for fault in faults:
            print(f"[chaos] {fault.title} ...", flush=True)
            results.append(await runner.run_fault(fault))
            print(f"[chaos]   {'; '.join(results[-1].missed()) or 'targets met'}", flush=True)
    return results, time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("faults", nargs="*", help=f"some of: {' '.join(f.slug for f in FAULTS)}")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("CHAOS_FAULT_SECONDS", "30")))
    parser.add_argument("--docs", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "chaos.md",
                        help="where to write the report ('-' for nowhere)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # Kafka's restart fault: aiokafka retries, 1,100 lines each run
        quiet_repeats(handler)
    try:
        results, total = asyncio.run(run(args.faults or None, seconds=args.seconds))
    except (StackError, ValueError) as exc:
        print(f"[chaos] {exc}", file=sys.stderr)
        return 2
    body = render(results, seconds=args.seconds, total_s=total)
    print(body)
    if str(args.docs) != "-":
        write_docs(args.docs, body)
        print(f"[chaos] written to {args.docs}")
    return 0 if all(not r.missed() for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
