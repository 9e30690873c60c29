"""Dead letters: a record that cannot be processed is copied to `<topic>.dlq` with why and where from.

The headers (`dlq_reason`, `dlq_topic`, `dlq_partition`, `dlq_offset`, `dlq_group`) follow the
record's own, so an operator can read the reason and replay the record to its topic.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["dlq_headers", "first_line"]


def dlq_headers(
    headers: Iterable[tuple[str, bytes]] | None, *, reason: str, topic: str, partition: int, offset: int, group: str,
) -> list[tuple[str, bytes]]:
    """The record's headers plus the dead-letter ones."""
    return list(headers or ()) + [
        ("dlq_reason", reason.encode()),
        ("dlq_topic", topic.encode()),
        ("dlq_partition", str(partition).encode()),
        ("dlq_offset", str(offset).encode()),
        ("dlq_group", group.encode()),
    ]


def first_line(exc: BaseException) -> str:
    """`Type: message` on one line, at most 500 characters: fit for a header or a log field."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {' '.join(t.strip() for t in text[:3])}"[:500]
