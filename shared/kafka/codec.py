"""Events <-> Kafka records: JSON value, key, CloudEvents binary-mode headers."""

from __future__ import annotations

from collections.abc import Sequence

from shared.events import Event, parse

__all__ = ["CE_HEADERS", "SPEC_VERSION", "CONTENT_TYPE", "encode", "decode", "header", "Headers"]

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
CE_HEADERS = ("ce_id", "ce_type", "ce_source", "ce_time", "ce_specversion")

Headers = list[tuple[str, bytes]]


def encode(event: Event, *, source: str) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) for `event`. `source` is the CloudEvents source, e.g. `/safeguard/flags`."""
    type_ = str(getattr(event, "type"))
    headers: Headers = [
        ("ce_id", str(event.id).encode()),
        ("ce_type", type_.encode()),
        ("ce_source", source.encode()),
        ("ce_time", event.time.isoformat().encode()),
        ("ce_specversion", SPEC_VERSION.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    return event.key.encode(), event.model_dump_json().encode(), headers


def decode(topic: str, value: bytes | None) -> Event:
    """Parse a record value with the contract of `topic`. Raises ValueError subclasses on bad input."""
    if value is None:
        raise ValueError("empty value (tombstone) where an event was expected")
    return parse(topic, value)


def header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    for k, v in headers or ():
        if k == name and v is not None:
            return v.decode(errors="replace")
    return None
