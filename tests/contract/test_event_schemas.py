"""A change to the wire is a reviewed change: every event's JSON schema is snapshotted.

Regenerate after an intended change with `make contract-snapshots`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared import asyncapi
from shared.events import EVENT_TYPES, Event

SNAPSHOTS = Path(__file__).parent / "snapshots"
ASYNCAPI = Path(__file__).parents[2] / "docs" / "asyncapi.yaml"


def schema_of(cls: type[Event]) -> str:
    return json.dumps(cls.model_json_schema(), indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_schema_matches_snapshot(type_: str) -> None:
    cls = EVENT_TYPES[type_]
    path = SNAPSHOTS / f"{type_}.json"
    assert path.exists(), f"no snapshot for {type_}: run `make contract-snapshots`"
    assert path.read_text() == schema_of(cls), f"{cls.__name__} changed on the wire; review, then `make contract-snapshots`"


def test_no_stale_snapshots() -> None:
    assert {p.stem for p in SNAPSHOTS.glob("*.json")} == set(EVENT_TYPES)


def test_asyncapi_document_is_generated_from_the_models() -> None:
    assert ASYNCAPI.read_text() == asyncapi.render(), "docs/asyncapi.yaml drifted: `make contract-snapshots`"


def test_asyncapi_lists_every_event_with_headers() -> None:
    doc = asyncapi.build()
    assert doc["asyncapi"] == "3.0.0"
    assert set(doc["components"]["messages"]) == {c.__name__ for c in EVENT_TYPES.values()}
    headers = doc["components"]["schemas"]["CloudEventHeaders"]
    assert {"ce_id", "ce_type", "ce_source", "ce_time", "ce_specversion", "traceparent"} <= set(headers["properties"])


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_example_round_trips_through_the_codec(type_: str) -> None:
    from shared.kafka.codec import decode, encode

    cls = EVENT_TYPES[type_]
    example = _example(cls)
    _, value, _ = encode(example, source="/safeguard/tests")
    assert decode(cls.topic, value) == example


def _example(cls: type[Event]) -> Event:
    """Build a valid instance from the schema's required fields."""
    schema = cls.model_json_schema()
    samples = {"string": "x", "integer": 1, "number": 1.0, "boolean": True, "object": {}, "array": []}
    data: dict[str, object] = {}
    for i, name in enumerate(schema.get("required", [])):
        prop = schema["properties"][name]
        if "enum" in prop:
            data[name] = prop["enum"][0]
        elif "format" in prop and prop["format"] == "date-time":
            data[name] = f"2026-01-01T00:00:{i:02d}Z"  # later fields later: starts_at < ends_at
        elif "exclusiveMaximum" in prop:
            data[name] = prop["exclusiveMaximum"] / 2
        elif "anyOf" in prop:
            data[name] = None
        elif prop.get("minItems"):
            data[name] = ["x"] * prop["minItems"]
        else:
            data[name] = samples[prop.get("type", "string")]
    return cls.model_validate(data)
