"""The bench report: each bench records its figures as rows beside their baselines; `python -m bench` keeps
them in bench/report.json (merged: a run of some benches replaces only theirs) and writes bench/report.md
(a table per bench, with the machine it ran on) and bench/report.png (each ratio to its baseline, with its
target).

    from bench.report import record
    record("SDK static", ours, "evals/s", baseline="flagd-core", baseline_value=core, target=2.0)

A row's ratio is value / baseline value. `target` is the ratio it must reach: at least `target` when higher
is better (throughput), at most when `lower_is_better` (times, and the runbook's limits, recorded with the
limit as the baseline and target 1). `limit`: an absolute bound on the value (p99 under 10 ms). `spread`: (min, max) of the repeats inside this run, when it repeats.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Row", "record", "runbook_limit", "begin", "finish", "write", "median_by", "python_speed_ms", "ROWS", "HERE"]

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
HISTORY = 5  # values kept per row across runs: the run-to-run spread
ROWS: list[Row] = []
_current: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    target: float | None = None
    lower_is_better: bool = False
    spread: tuple[float, float] | None = None
    note: str = ""
    limit: float | None = None  # an absolute bound on the value (in its unit): value <= limit

    @property
    def ratio(self) -> float | None:
        if self.baseline_value is None or not self.baseline_value:
            return None
        return self.value / self.baseline_value

    @property
    def passed(self) -> bool | None:
        r = self.ratio
        checks = [] if self.limit is None else [self.value <= self.limit]
        if r is not None and self.target is not None:
            checks.append(r <= self.target if self.lower_is_better else r >= self.target)
        return all(checks) if checks else None


def record(name: str, value: float, unit: str, *, baseline: str | None = None, baseline_value: float | None = None,
           target: float | None = None, lower_is_better: bool = False, spread: tuple[float, float] | None = None,
           note: str = "", limit: float | None = None) -> Row:
    """Keep one figure of the running bench (printed by the bench itself as before)."""
    row = Row(name, float(value), unit, baseline, None if baseline_value is None else float(baseline_value),
              target, lower_is_better, None if spread is None else (float(spread[0]), float(spread[1])), note,
              limit)
    ROWS.append(row)
    return row


def median_by(items: Sequence[T], key: Callable[[T], float]) -> T:
    """The item whose `key` is the median: the middle one of an odd count, the upper middle of an even one (a
    run's figure is one measured run, never an average of two)."""
    if not items:
        raise ValueError("median of nothing")
    return sorted(items, key=key)[len(items) // 2]


def runbook_limit(name: str, seconds: float, *, limit_s: float, what: str) -> Row:
    """A measured time beside the runbook's own limit (ratio to the limit, target <= 1)."""
    return record(name, seconds, "s", baseline=f"runbook: {what}", baseline_value=limit_s, target=1.0,
                  lower_is_better=True)


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def python_speed_ms(steps: int = 1_000_000) -> float:
    """The machine's speed for Python: the best of 3 runs of a `steps`-step loop, in ms. Absolute figures (req/s,
    p99) move with it from one machine to the next; ratios to a baseline run beside them hardly do."""
    best = float("inf")
    for _ in range(3):
        t0, total = time.perf_counter(), 0
        for i in range(steps):
            total += i
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


def begin(bench: str) -> None:
    """Start collecting the rows of `bench` (called by bench/__main__.py)."""
    ROWS.clear()
    _current.clear()
    _current.update(bench=bench, started=time.time(), load_before=os.getloadavg(), python_ms=python_speed_ms())


def finish(bench: str, *, error: str | None = None) -> dict[str, Any]:
    """The finished bench's section: its rows and the machine it ran on."""
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "bench", "sdk", "services", "shared"))
    return {
        "rows": [{**asdict(r), "ratio": r.ratio, "passed": r.passed} for r in ROWS],
        "error": error,
        "machine": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(_current.get("started", time.time()))),
            "seconds": round(time.time() - _current.get("started", time.time()), 1),
            "cores": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version(),
            "python_loop_ms": _current.get("python_ms"),
            "load_before": [round(x, 2) for x in _current.get("load_before", os.getloadavg())],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "commit": commit + (" (with local changes)" if dirty else ""),
            "note": os.environ.get("BENCH_NOTE", ""),
        },
    }


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` replaces its benches in `old`; each row keeps the last HISTORY values of its name and baseline."""
    merged = dict(old)
    for bench, section in new.items():
        before = {(r["name"], r["baseline"]): r.get("history", []) for r in old.get(bench, {}).get("rows", [])}
        for row in section["rows"]:
            row["history"] = [*before.get((row["name"], row["baseline"]), []), row["value"]][-HISTORY:]
        merged[bench] = section
    return dict(sorted(merged.items()))


def write(sections: dict[str, dict[str, Any]], *, directory: Path = HERE) -> Path:
    """Merge into report.json, then write report.md and report.png from the whole of it."""
    store = directory / "report.json"
    old = json.loads(store.read_text()) if store.exists() else {}
    data = _merge(old, sections)
    store.write_text(json.dumps(data, indent=1) + "\n")
    from bench._render import chart, markdown
    (directory / "report.md").write_text(markdown(data, chart_name="report.png"))
    chart(data, directory / "report.png")
    return directory / "report.md"
