"""Subscriptions without a network: the signed link tokens, the webhook signature a receiver checks, the
subscribe request's checks, private addresses, and which status page notices reach subscribers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.notifier.subscriptions import (
    SubscribeRequest, TokenError, incident_notice_type, is_private_url, read_token, sign_token, sign_webhook,
    verify_webhook,
)

KEY = b"k" * 32
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_a_token_reads_back_only_for_its_purpose_key_and_time() -> None:
    token = sign_token(key=KEY, purpose="confirm", subject="sub-1", expires=NOW + timedelta(hours=1))
    assert read_token(token, key=KEY, purpose="confirm", now=NOW) == "sub-1"
    with pytest.raises(TokenError, match="not a unsubscribe link"):
        read_token(token, key=KEY, purpose="unsubscribe", now=NOW)
    with pytest.raises(TokenError, match="expired"):
        read_token(token, key=KEY, purpose="confirm", now=NOW + timedelta(hours=2))
    with pytest.raises(TokenError, match="altered or not ours"):
        read_token(token, key=b"another key", purpose="confirm", now=NOW)
    payload, mac = token.split(".")
    forged = sign_token(key=b"x", purpose="confirm", subject="sub-2", expires=None).split(".")[0] + "." + mac
    with pytest.raises(TokenError, match="altered"):
        read_token(forged, key=KEY, purpose="confirm", now=NOW)
    forever = sign_token(key=KEY, purpose="unsubscribe", subject="sub-1", expires=None)
    assert read_token(forever, key=KEY, purpose="unsubscribe", now=NOW + timedelta(days=3650)) == "sub-1"


def test_the_webhook_signature_covers_timestamp_and_body_and_refuses_replays() -> None:
    body, ts = b'{"type":"incident.opened"}', int(NOW.timestamp())
    sig = sign_webhook(secret="whsec_a", timestamp=ts, body=body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    ok = {"secret": "whsec_a", "timestamp": str(ts), "signature": sig, "body": body}
    assert verify_webhook(**ok, now=NOW + timedelta(seconds=30))  # type: ignore[arg-type]
    assert not verify_webhook(**{**ok, "body": body + b" "}, now=NOW)  # type: ignore[arg-type]
    assert not verify_webhook(**{**ok, "secret": "whsec_b"}, now=NOW)  # type: ignore[arg-type]
    assert not verify_webhook(**{**ok, "timestamp": str(ts + 1)}, now=NOW)  # type: ignore[arg-type]
    assert not verify_webhook(**ok, now=NOW + timedelta(minutes=6))  # type: ignore[arg-type]  # a replay
    assert not verify_webhook(**{**ok, "timestamp": "soon"}, now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(("body", "needle"), [
    ({}, "exactly one of 'email' and 'webhook'"),
    ({"email": "a@b.example", "webhook": "https://x.example/h"}, "exactly one"),
    ({"email": "not-an-address"}, "not an e-mail address"),
    ({"webhook": "ftp://x.example/h"}, "http:// or https://"),
    ({"webhook": "https://user:pw@x.example/h"}, "no credentials"),
    ({"webhook": "javascript:alert(1)"}, "http:// or https://"),
])
def test_a_bad_subscribe_request_is_explained(body: dict[str, str], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        SubscribeRequest.model_validate(body)


def test_good_requests() -> None:
    assert SubscribeRequest(email="ops@example.com").email == "ops@example.com"
    assert SubscribeRequest(webhook="https://hooks.example.com/status?k=1").webhook


@pytest.mark.parametrize(("url", "private"), [
    ("http://127.0.0.1:9000/h", True), ("http://localhost/h", True), ("http://10.1.2.3/", True),
    ("http://[::1]:80/", True), ("http://169.254.169.254/latest", True), ("https://hooks.example.com/x", False),
    ("https://8.8.8.8/x", False),
])
def test_private_addresses(url: str, private: bool) -> None:
    assert is_private_url(url) is private


def test_which_status_page_notices_reach_subscribers() -> None:
    assert incident_notice_type("Investigating: demo: error rate") == "incident.opened"
    assert incident_notice_type("Identified: demo is being worked on") == "incident.updated"
    assert incident_notice_type("Monitoring: a fix is in place for demo") == "incident.updated"
    assert incident_notice_type("Resolved: demo (after 5 min)") == "incident.resolved"
    assert incident_notice_type("Escalated to on-call developer: demo") is None  # internal
