"""The SLA core's state, named: what the Faust tables hold, and the few ways it changes.

Every value here is stored as JSON in a Faust table (`tables.py`, `value_serializer="json"`),
so the types are TypedDicts and JSON lists, and the stored format is the one the processor
has always written: a running stack's changelog topics restore into these types unchanged
(`load_status` fills in the keys that older versions did not write yet).

Buckets are JSON lists (compact on the changelog, updated in place); their layouts:

    RequestMinute  [good, total, latency_sum_ms, sketch]   series REQUEST_MINUTES
    Tally          [good, total]                            REQUEST_HOURS, PROBE_MINUTES, PROBE_HOURS
    LoadMinute     [load_sum_ms, sketch]                    LOAD_MINUTES
    Second         [second, count, errors, latency_sum_ms, sketch]   the hot window, `Status.seconds`

A sketch is `LatencySketch`'s wire form: `{bucket index as str: count}`.
"""

from __future__ import annotations

from typing import Any, Final, Literal, NotRequired, TypedDict

from services.sla.budgets import Counts

__all__ = [
    "Series", "REQUEST_MINUTES", "REQUEST_HOURS", "PROBE_MINUTES", "PROBE_HOURS", "LOAD_MINUTES", "SERIES",
    "BUDGET_SERIES", "Sketch", "RequestMinute", "Tally", "LoadMinute", "Second", "OpenBucket", "TriggerDict",
    "Probe", "Instance", "Clear", "RearmMark", "Status", "new_status", "load_status", "series_seconds",
    "new_request_minute", "new_tally", "new_load_minute", "add_requests", "add_tally", "add_load", "counts_of",
    "merge_sketch",
]

Series = Literal["rm", "rh", "pm", "ph", "lm"]
REQUEST_MINUTES: Final = "rm"
REQUEST_HOURS: Final = "rh"
PROBE_MINUTES: Final = "pm"
PROBE_HOURS: Final = "ph"
LOAD_MINUTES: Final = "lm"
SERIES: Final[tuple[Series, ...]] = (REQUEST_MINUTES, REQUEST_HOURS, LOAD_MINUTES, PROBE_MINUTES, PROBE_HOURS)
BUDGET_SERIES: Final[dict[str, tuple[Series, Series]]] = {
    "requests": (REQUEST_MINUTES, REQUEST_HOURS), "probes": (PROBE_MINUTES, PROBE_HOURS),
}  # basis -> (minute series, hour series)

Sketch = dict[str, int]
RequestMinute = list[Any]
Tally = list[int]
LoadMinute = list[Any]
Second = list[Any]
OpenBucket = list[Any]  # [bucket id, bucket value]: the newest bucket of a series
TriggerDict = dict[str, Any]  # detection.TriggerState.to_dict()


class Probe(TypedDict):
    kind: str
    status: str
    state: str
    latency_ms: float
    at: float


class Instance(TypedDict):
    mem: list[list[float]]  # [[time, memory percent], ...] within the memory_high window
    pools: dict[str, bool]  # pool name -> connected
    at: float
    rss_bytes: NotRequired[int]
    pid: NotRequired[int]


class Clear(TypedDict):
    episode_id: str
    at: float
    reason: str


class RearmMark(TypedDict):
    flag: str
    at: float
    bad_since: float | None


class Status(TypedDict):
    """One service's value in the `service_to_status` table."""

    watermark: float | None  # the latest event time seen, never ahead of the clock
    triggers: dict[str, TriggerDict]
    instances: dict[str, Instance]
    probes: dict[str, Probe]
    budget_at: float | None  # when the budgets were last reported
    budgets: dict[str, dict[str, Any]]  # basis -> the last BudgetReported, as JSON
    seconds: list[Second]  # the hot window, oldest first
    open: dict[str, OpenBucket]  # series -> its newest bucket
    seen: dict[str, int]  # request reporter -> start (ms) of its newest window counted
    outbox: list[dict[str, Any]]  # trigger events not yet published, as JSON
    requests_at: NotRequired[float]  # clock time of the last request record
    health_at: NotRequired[float]  # clock time of the last probe or process stats
    clears: NotRequired[dict[str, Clear]]  # trigger -> why its last episode ended
    rearm: NotRequired[RearmMark | None]


def new_status() -> Status:
    return {"watermark": None, "triggers": {}, "instances": {}, "probes": {}, "budget_at": None, "budgets": {},
            "seconds": [], "open": {}, "seen": {}, "outbox": []}


def load_status(stored: Any) -> tuple[Status, bool]:
    """A shallow copy of a stored status to change, with the keys older versions did not write filled in;
    True when it predates the hot window in the status (`seconds`): its old "rs" buckets are to go."""
    st: Status = dict(stored)  # type: ignore[assignment]
    st.setdefault("seen", {})
    st.setdefault("outbox", [])
    st.setdefault("open", {})
    legacy = "seconds" not in st
    if legacy:
        st["seconds"] = []
    return st, legacy


def series_seconds(series: str) -> int:
    """The bucket size of `series`."""
    return 3600 if series.endswith("h") else 60


def new_request_minute() -> RequestMinute:
    return [0, 0, 0.0, {}]


def new_tally() -> Tally:
    return [0, 0]


def new_load_minute() -> LoadMinute:
    return [0.0, {}]


def add_requests(minute: RequestMinute, *, good: int, total: int, latency_ms: float, sketch: Sketch) -> None:
    minute[0] += good
    minute[1] += total
    minute[2] += latency_ms
    merge_sketch(minute[3], sketch)


def add_tally(tally: Tally, *, good: int, total: int) -> None:
    tally[0] += good
    tally[1] += total


def add_load(loads: LoadMinute, *, load_ms: float, bucket: int) -> None:
    loads[0] += load_ms
    merge_sketch(loads[1], {str(bucket): 1})


def counts_of(tally: Tally | RequestMinute) -> Counts:
    """(good, total) of a Tally or a RequestMinute (both begin with them)."""
    return Counts(tally[0], tally[1])


def merge_sketch(into: Sketch, wire: Sketch) -> None:
    """Add sketch bucket counts on the wire form (string keys): no int parsing per event."""
    get = into.get
    for b, c in wire.items():
        into[b] = get(b, 0) + c
