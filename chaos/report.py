"""The chaos report: one table row per fault, details below, written into docs/chaos.md."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from chaos.phase import KILL_DEADLINE_S
from chaos.result import FaultResult

__all__ = ["render", "write_docs", "BEGIN", "END"]

BEGIN = "<!-- chaos:last-run:begin -->"
END = "<!-- chaos:last-run:end -->"
_HEAD = ("fault", "events prod / lost / dup", "SLA req counted (Δ)", "SDK evals / fail", "OFREP evals / fail",
         "kill accepted", "kill seen by", "back to healthy¹", "triggers", "targets")


def _s(x: float | None) -> str:
    return "never" if x is None else f"{x:.1f} s"


def _row(r: FaultResult) -> tuple[str, ...]:
    seen = f"{len(set(r.seen_s) & set(r.observers))}/{len(r.observers)}"
    if r.seen_s:
        seen += f" (max {max(r.seen_s.values()) * 1000:.0f} ms)"
    if r.reverted:
        seen += f", reverted {sum(r.reverted.values())}"
    if r.stale:
        seen += f", still on after {KILL_DEADLINE_S:g} s: {len(r.stale)}"
    sla = "n/a" if r.sla_requests is None else f"{r.sla_requests} ({r.sla_delta:+d})"
    if r.sla_settle_s >= 5:
        sla += f", after {r.sla_settle_s:.0f} s"
    triggers = "; ".join(str(t) for t in r.triggers) or "none"
    missed = r.missed()
    return (r.title + (f" {r.seconds:g} s" if r.seconds else ""), f"{r.produced} / {r.lost} / {r.duplicates}", sla,
            f"{r.sdk_evals} / {r.sdk_failures}", f"{r.ofrep_evals} / {r.ofrep_failures}",
            _s(r.kill_accept_s) + (f" ({len(r.kill_codes)} tries)" if len(r.kill_codes) > 1 else ""), seen,
            _s(r.healthy_s), triggers, "**met**" if not missed else "MISSED: " + "; ".join(missed))


def _details(r: FaultResult) -> list[str]:
    lines = [f"- **{r.title}**: program back after {_s(r.back_s)}; kill answers {' '.join(r.kill_codes) or '-'};"
             f" seen " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in r.seen_s.items())
             + (f"; not seen by {', '.join(sorted(set(r.observers) - set(r.seen_s)))}" if set(r.observers) - set(r.seen_s) else "")
             + f"; SDK dropped {r.sdk_dropped} windows; requests produced {r.produced_requests}, in topic {r.topic_requests},"
             f" SLA count settled after {r.sla_settle_s:g} s;"
             f" unhealthy seen: {', '.join(r.unhealthy) or 'nothing'}; demo /api/items {r.demo or '-'};"
             f" OFREP 4xx {r.ofrep_4xx}"]
    lines += [f"  - first failures: {f}" for f in r.failures[:3]]
    return lines


def render(results: Sequence[FaultResult], *, seconds: float, total_s: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = f"Last run: **{when}**, commit `{_commit()}`, timed faults {seconds:g} s, whole run {total_s:.0f} s."
    table = ["| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    table += ["| " + " | ".join(c.replace("|", "/") for c in _row(r)) + " |" for r in results]
    met = [r.title for r in results if not r.missed()]
    missed = [r.title for r in results if r.missed()]
    summary = (f"¹ from the SIGKILL for kill -9, from undoing the fault otherwise.\n\n"
               f"Targets met: {', '.join(met) or 'none'}. Missed: {', '.join(missed) or 'none'}.")
    details = [line for r in results for line in _details(r)]
    return "\n".join([head, "", *table, "", summary, "", "Details:", "", *details, ""])


def write_docs(path: Path, body: str) -> None:
    """Replace the last-run section of `path` (between the markers), or append one."""
    text = path.read_text() if path.exists() else "# Chaos\n"
    block = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"
