"""`Progress`: the batches in hand, and whether one has been held past `stall_after` (/healthz then says 503)."""

from __future__ import annotations

import pytest

from services.sla.agents import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_batch_in_hand_is_never_stalled() -> None:
    clock = Clock()
    progress = Progress(stall_after=30, clock=clock)
    clock.now += 3600
    assert progress.stalled() is None


def test_a_batch_held_past_the_limit_is_a_stall_and_its_end_clears_it() -> None:
    clock = Clock()
    progress = Progress(stall_after=30, clock=clock)
    with progress.batch("telemetry.requests"):
        clock.now += 30
        assert progress.stalled() is None  # at the limit: still fine
        clock.now += 12
        assert progress.stalled() == (
            "an SLA agent has been on one batch of telemetry.requests for 42 s (more than 30 s): the broker has not "
            "acked its writes, and the topic's later records wait behind it")
    assert progress.stalled() is None


def test_the_oldest_batch_in_hand_is_the_one_reported() -> None:
    clock = Clock()
    progress = Progress(stall_after=10, clock=clock)
    with progress.batch("health.checks"):
        clock.now += 5
        with progress.batch("telemetry.requests"):
            clock.now += 20
            assert "health.checks for 25 s" in (progress.stalled() or "")
        assert "health.checks" in (progress.stalled() or "")


def test_a_batch_that_raises_is_no_longer_in_hand() -> None:
    clock = Clock()
    progress = Progress(stall_after=1, clock=clock)
    with pytest.raises(RuntimeError), progress.batch("telemetry.requests"):
        raise RuntimeError("the batch failed")
    clock.now += 60
    assert progress.stalled() is None
