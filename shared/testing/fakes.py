from __future__ import annotations

import asyncio
from collections import defaultdict

from shared.events import Event

__all__ = ["InMemoryPublisher", "FakeClock"]


class InMemoryPublisher:
    """Implements `shared.kafka.Publisher`; keeps what was published per topic, in order."""

    def __init__(self) -> None:
        self.published: list[tuple[str, Event]] = []
        self.by_topic: dict[str, list[Event]] = defaultdict(list)
        self.fail_with: BaseException | None = None

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        topic = topic or event.topic
        self.published.append((topic, event))
        self.by_topic[topic].append(event)

    def of_type(self, cls: type[Event]) -> list[Event]:
        return [e for _, e in self.published if isinstance(e, cls)]

    def clear(self) -> None:
        self.published.clear()
        self.by_topic.clear()


class FakeClock:
    """A monotonic clock tests move by hand: `clock()` reads it, `advance(s)` moves it."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)
