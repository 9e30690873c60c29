"""Run every benchmark module, or the ones named: `python -m bench flags sla`."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n=== bench {name} ===", flush=True)
        t0 = time.perf_counter()
        asyncio.run(module.main())
        print(f"=== bench {name}: {time.perf_counter() - t0:.1f}s ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
