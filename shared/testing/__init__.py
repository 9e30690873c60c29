"""Fakes for unit tests: an in-memory publisher and a controllable clock."""

from shared.testing.fakes import FakeClock, InMemoryPublisher

__all__ = ["FakeClock", "InMemoryPublisher"]
