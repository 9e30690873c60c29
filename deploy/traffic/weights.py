"""Weights as percents: the checks and arithmetic both traffic switches share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["TrafficError", "check_weights", "to_percent"]


class TrafficError(RuntimeError):
    """The traffic switch could not be read or changed; the message says what and where."""


def check_weights(weights: Mapping[str, object], *, colours: Iterable[str]) -> dict[str, int]:
    """Every known colour -> its percent (0 when left out), or ValueError saying what is wrong."""
    known = list(colours)
    unknown = sorted(set(weights) - set(known))
    if unknown:
        raise ValueError(f"unknown colour(s) {', '.join(unknown)}: this app has {', '.join(known)}")
    checked: dict[str, int] = {}
    for colour, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"weight of {colour} must be a whole percent, got {value!r}")
        if not 0 <= value <= 100:
            raise ValueError(f"weight of {colour} must be 0..100 percent, got {value}")
        checked[colour] = value
    if (total := sum(checked.values())) != 100:
        raise ValueError(f"weights must add up to 100 percent, got {total}: {checked}")
    return {c: checked.get(c, 0) for c in known}


def to_percent(raw: Mapping[str, int]) -> dict[str, int]:
    """Relative weights -> whole percents summing to 100 (largest remainder); all 0 stays all 0."""
    total = sum(raw.values())
    if total <= 0:
        return {c: 0 for c in raw}
    exact = {c: 100 * w / total for c, w in raw.items()}
    percent = {c: int(v) for c, v in exact.items()}
    by_remainder = sorted(raw, key=lambda c: exact[c] - percent[c], reverse=True)
    for colour in by_remainder[: 100 - sum(percent.values())]:
        percent[colour] += 1
    return percent
