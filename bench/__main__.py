"""Run every benchmark module, or the ones named: `python -m bench flags sla`; then write bench/report.md and
bench/report.png (bench/report.py) with the figures they recorded."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

from bench import report


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    sections, failed = {}, 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "main"):
            continue  # bench/report.py and other helpers
        print(f"\n=== bench {name} ===", flush=True)
        t0 = time.perf_counter()
        report.begin(name)
        error = None
        try:
            asyncio.run(module.main())
        except Exception as exc:  # noqa: BLE001 - one bench failing must not lose the others' figures
            traceback.print_exc()
            error, failed = f"{type(exc).__name__}: {exc}"[:300], failed + 1
        sections[name] = report.finish(name, error=error)
        print(f"=== bench {name}: {time.perf_counter() - t0:.1f}s ===", flush=True)
    _delete_bench_topics()
    if sections:
        print(f"\nreport: {report.write(sections)} and report.png", flush=True)
    return 1 if failed else 0


def _delete_bench_topics() -> None:
    """The benches' own topics (`bench<id>.`, the Faust apps' `bench-<id>-`) go when they end, as the tests' do."""
    import os
    import re

    from shared.testing.kafka import delete_topics

    ours = re.compile(r"bench-?[0-9a-f]{6,}[-.]").match
    try:
        asyncio.run(asyncio.wait_for(delete_topics(os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                                                   lambda t: ours(t) is not None), 120))
    except Exception as exc:  # noqa: BLE001 - clean-up only: the figures stand
        print(f"the benches' Kafka topics were not deleted: {exc!r}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
