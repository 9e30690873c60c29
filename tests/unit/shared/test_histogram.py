import random

import pytest

from shared.histogram import RELATIVE_ACCURACY, LatencySketch


def exact_quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[int(q * (len(s) - 1))]


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_quantiles_within_relative_accuracy(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1.2) for _ in range(20_000)]
    got = LatencySketch.of(values).quantile(q)
    want = exact_quantile(values, q)
    assert got is not None and abs(got - want) / want <= RELATIVE_ACCURACY + 1e-9


def test_merge_equals_one_sketch_of_everything() -> None:
    rng = random.Random(1)
    parts = [[rng.uniform(1, 3000) for _ in range(500)] for _ in range(10)]
    merged = LatencySketch()
    for p in parts:
        merged.merge(LatencySketch.from_wire(LatencySketch.of(p).to_wire()))
    whole = LatencySketch.of([v for p in parts for v in p])
    assert merged.buckets == whole.buckets and merged.count == 5000
    assert merged.quantile(0.99) == whole.quantile(0.99)


def test_empty_and_bounds() -> None:
    s = LatencySketch()
    assert s.quantile(0.5) is None and s.mean is None
    with pytest.raises(ValueError, match="quantile"):
        s.quantile(1.5)
    s.add(0.0)
    assert s.quantile(0.5) == pytest.approx(0.01)


def test_count_above_threshold() -> None:
    s = LatencySketch.of([100] * 90 + [6000] * 10)
    assert s.count_above(5000) == 10
    assert s.count_above(50) == 100
