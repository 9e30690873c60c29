"""`python -m shared.topics list`: the names a deployment's services use, its topic prefix included."""

from __future__ import annotations

import pytest

from shared.topics import TOPICS, all_topic_names, dlq, main


def test_list_prints_the_prefixed_names(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "staging.")
    assert main(["list"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == all_topic_names("staging.")
    assert "staging.flags.state" in printed and "staging.flags.state.dlq" in printed and "flags.state" not in printed


def test_without_a_prefix_the_names_are_the_contract_s() -> None:
    assert all_topic_names() == [t.name for t in TOPICS] + [dlq(t.name) for t in TOPICS]


async def test_an_unknown_topic_name_is_refused_before_any_broker_is_asked() -> None:
    from shared.settings import KafkaSettings
    from shared.topics import create_topics
    with pytest.raises(ValueError, match=r"unknown topic\(s\): \['flags.nope'\]"):
        await create_topics(KafkaSettings(bootstrap_servers="127.0.0.1:1"), names=["flags.state", "flags.nope"])
