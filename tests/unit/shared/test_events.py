import json

import pytest
from pydantic import ValidationError

from shared.events import (
    EVENT_TYPES, TOPIC_EVENTS, DisableNewFeatures, RequestsObserved, TriggerCleared, TriggerFired, contract_topic, parse,
)
from shared.kafka.codec import decode, encode, header
from shared.topics import TOPICS, dlq


def test_every_topic_has_events_and_every_event_a_known_topic() -> None:
    assert {t.name for t in TOPICS} == set(TOPIC_EVENTS)
    assert all("." in t and "_" not in t and "-" not in t for t in TOPIC_EVENTS)
    assert len(EVENT_TYPES) == sum(len(v) for v in TOPIC_EVENTS.values())


def test_discriminated_union_picks_the_class() -> None:
    cleared = TriggerCleared(service="a", trigger="memory_high", episode_id="e", value=50, threshold=90)
    assert isinstance(parse("sla.triggers", cleared.model_dump_json()), TriggerCleared)


def test_event_of_another_topic_is_rejected() -> None:
    cmd = DisableNewFeatures(service="shop")
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        parse("sla.triggers", cmd.model_dump_json())


def test_unknown_fields_are_ignored_and_missing_ones_named() -> None:
    ok = {"type": "recovery.disable_new_features", "service": "shop", "added_in_v2": 1}
    assert isinstance(parse("recovery.commands", json.dumps(ok)), DisableNewFeatures)
    with pytest.raises(ValidationError, match="service"):
        parse("recovery.commands", json.dumps({"type": "recovery.disable_new_features"}))


def test_prefixed_topics_use_the_same_contract() -> None:
    assert contract_topic("staging.sla.triggers") == "sla.triggers"
    with pytest.raises(KeyError, match="not part of the event contract"):
        contract_topic("sla.triggersx")
    assert dlq("sla.triggers") == "sla.triggers.dlq"


def test_codec_headers_and_key() -> None:
    e = RequestsObserved(service="shop", instance="blue-1", window_start="2026-01-01T00:00:00Z", count=10, errors=1)
    key, value, headers = encode(e, source="/safeguard/sdk")
    assert key == b"shop"
    assert header(headers, "ce_id") == str(e.id)
    assert header(headers, "ce_type") == "telemetry.requests_observed"
    assert header(headers, "ce_source") == "/safeguard/sdk"
    assert header(headers, "ce_time") == e.time.isoformat()
    assert decode("telemetry.requests", value) == e
    with pytest.raises(ValueError, match="tombstone"):
        decode("telemetry.requests", None)


def test_flag_events_are_keyed_by_flag() -> None:
    from shared.events import FlagChanged

    e = FlagChanged(flag_key="gamification", action="killed", actor="ops", version=3)
    assert e.key == "gamification"
    assert TriggerFired.key_field == "service"
