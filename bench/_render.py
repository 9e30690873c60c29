"""bench/report.md and bench/report.png from the merged figures (bench/report.json); see bench/report.py."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["markdown", "chart"]


def _num(v: float | None) -> str:
    if v is None:
        return ""
    if v != 0 and (abs(v) >= 1000 or abs(v) < 0.01):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.2g}"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def _target(row: dict[str, Any]) -> str:
    parts = [] if row["target"] is None else [("<= " if row["lower_is_better"] else ">= ") + f"{row['target']:g}x"]
    if row.get("limit") is not None:
        parts.append(f"<= {_num(row['limit'])} {row['unit']}")
    return ", ".join(parts)


def _verdict(row: dict[str, Any]) -> str:
    return {True: "pass", False: "**FAIL**", None: ""}[row["passed"]]


def _spread(row: dict[str, Any]) -> str:
    parts = []
    if row.get("spread"):
        lo, hi = row["spread"]
        parts.append(f"in run {_num(lo)}-{_num(hi)}")
    hist = row.get("history") or []
    if len(hist) > 1:
        parts.append(f"last {len(hist)} runs {_num(min(hist))}-{_num(max(hist))}")
    return "; ".join(parts)


def _machine(m: dict[str, Any]) -> str:
    lb, la = m["load_before"], m["load_after"]
    line = (f"{m['date']}, {m['seconds']} s, commit {m['commit'] or '?'}, Python {m['python']}, {m['cores']} cores "
            f"({m['cpu']}), load average {lb[0]:.2f} / {lb[1]:.2f} / {lb[2]:.2f} before, "
            f"{la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} after")
    if m.get("python_loop_ms"):  # the machine's speed (bench.report.python_speed_ms); older sections lack it
        line += f", a 1M-step Python loop {m['python_loop_ms']} ms"
    return line + (f". {m['note']}" if m.get("note") else "")


def markdown(data: dict[str, Any], *, chart_name: str) -> str:
    rows = [r for s in data.values() for r in s["rows"]]
    judged = [r for r in rows if r["passed"] is not None]
    out = ["# Bench report", "",
           "Written by `make bench` (`python -m bench [NAME ...]`; a run of some benches replaces only theirs). "
           "Every figure beside its baseline measured in the same run; ratio = value / baseline; target is on "
           "the ratio. Spread: min-max of the repeats inside the run (where the bench repeats) and of this "
           "row's last runs. Load is bounded and on loopback.", "",
           f"{len(rows)} figures in {len(data)} benches; {sum(1 for r in judged if r['passed'])} of {len(judged)} "
           f"with a target meet it.", "", f"![ratios to baselines]({chart_name})", ""]
    for bench, section in data.items():
        out += [f"## {bench}", "", f"Machine: {_machine(section['machine'])}.", ""]
        if section.get("error"):
            out += [f"Did not finish: {section['error'].replace('`', chr(39))}", ""]
        if not section["rows"]:
            continue
        out += ["| figure | value | unit | baseline | baseline value | ratio | target | result | spread |",
                "|---|---:|---|---|---:|---:|---|---|---|"]
        for r in section["rows"]:
            name = r["name"] + (f" ({r['note']})" if r.get("note") else "")
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}" if r["ratio"] >= 0.1 else f"{r['ratio']:.2g}"
            out.append(f"| {name} | {_num(r['value'])} | {r['unit']} | {r['baseline'] or ''} | "
                       f"{_num(r['baseline_value'])} | {ratio} | {_target(r)} | {_verdict(r)} | {_spread(r)} |")
        out.append("")
    return "\n".join(out)


def _label(bench: str, row: dict[str, Any]) -> str:
    text = f"{bench}: {row['name']} / {row['baseline']}"
    return text if len(text) <= 78 else text[:77] + "…"


def chart(data: dict[str, Any], path: Path) -> None:
    """Horizontal bars: each ratio to its baseline (log scale), its target as a black tick, green / red when
    it meets / misses the target, grey without one."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(bench, r) for bench, s in data.items() for r in s["rows"] if r["ratio"] is not None and r["ratio"] > 0]
    height = max(3.0, 0.28 * len(rows) + 1.5)
    fig, ax = plt.subplots(figsize=(13, height))
    if not rows:
        ax.text(0.5, 0.5, "no figures with a baseline yet", ha="center")
    for i, (bench, r) in enumerate(rows):
        color = {True: "#2e8b57", False: "#c0392b", None: "#9e9e9e"}[r["passed"]]
        ax.barh(i, r["ratio"], color=color, left=0)
        if r["target"] is not None:
            ax.plot([r["target"]] * 2, [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax.set_yticks(range(len(rows)), [_label(b, r) for b, r in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first row on top, no margin
    ax.set_xscale("log")
    lo = min([r["ratio"] for _, r in rows] + [r["target"] for _, r in rows if r["target"]] + [0.5])
    hi = max([r["ratio"] for _, r in rows] + [r["target"] for _, r in rows if r["target"]] + [2])
    ax.set_xlim(10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi)))
    ax.axvline(1, color="#555555", linewidth=0.8, linestyle="--")
    ax.set_xlabel("ratio to the baseline measured in the same run (log scale)\nblack tick: the target "
                  "(>= for rates, <= for times and the runbook's limits)\ngreen met, red missed, grey no target "
                  "(a row with an absolute limit, e.g. p99 <= 10 ms, is coloured by it)",
                  fontsize=8)
    machines = [s["machine"] for s in data.values()]
    cores = {m["cores"] for m in machines}
    loads = [m["load_before"][0] for m in machines] + [m["load_after"][0] for m in machines]
    ax.set_title(f"Safeguard bench: {len(rows)} ratios, {'/'.join(map(str, cores))} cores, 1-min load "
                 f"{min(loads):.1f}-{max(loads):.1f} during the runs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
