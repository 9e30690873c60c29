"""The Apprise channel (the long tail): a real delivery through Apprise's `json://` service to a receiver on
loopback, a refusal that becomes a DeliveryError (retried by the relay), the URL's token never logged, and
bad configuration refused at start."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from services.notifier.channels import ChannelSender, DeliveryError
from services.notifier.models import Incident
from services.notifier.policy import NotifierPolicy
from services.notifier.settings import ChannelSecrets
from shared.testing.http import serving

TOKEN = "apprise-t0ken-9f8e7d"
INC = Incident(incident_id="inc-9", service="demo", trigger="error_rate_high", episode_id="ep",
               title="demo: error rate 15.7 % > 5 %", severity="major", opened_at=datetime.now(UTC))


class Receiver(ThreadingHTTPServer):
    status = 200
    seen: list[tuple[str, dict[str, str], bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append((self.path, dict(self.headers), body))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), _Handler)
    server.seen = []
    with serving(server):
        yield server


def _sender(url: str) -> ChannelSender:
    policy = NotifierPolicy.model_validate({"channels": {"oncall_page": {"kind": "apprise"}}})
    return ChannelSender(policy=policy, http=httpx.AsyncClient(),
                         secrets={"oncall_page": ChannelSecrets(url=url)})  # type: ignore[arg-type]


async def test_a_notice_is_delivered_through_apprise(receiver: Receiver) -> None:
    port = receiver.server_address[1]
    sender = _sender(f"json://bot:{TOKEN}@127.0.0.1:{port}/hook")
    await sender.send(channel="oncall_page", recipient="alice", message="[L2] demo: error rate 15.7 % > 5 %",
                      incident=INC)
    [(path, headers, body)] = receiver.seen
    sent = json.loads(body)
    assert path == "/hook" and headers["Authorization"].startswith("Basic ")  # the URL's user and token
    assert sent["title"] == "[Safeguard oncall page] demo: error rate 15.7 % > 5 %"
    assert sent["message"].startswith("[L2] demo: error rate 15.7 % > 5 %") and "inc-9" in sent["message"]
    assert sent["type"] == "failure"  # an open incident; a resolved one is sent as info


async def test_a_refusal_is_a_delivery_error_and_the_token_is_never_logged(
        receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.status = 500
    sender = _sender(f"json://bot:{TOKEN}@127.0.0.1:{receiver.server_address[1]}/hook")
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError, match="oncall_page apprise"):
        await sender.send(channel="oncall_page", recipient="alice", message="[L2] page", incident=INC)
    assert receiver.seen, "apprise did not try"
    assert TOKEN not in caplog.text


def test_an_unknown_scheme_or_a_missing_url_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="not a URL Apprise knows") as found:
        _sender(f"nosuchservice://{TOKEN}@example.test")
    assert TOKEN not in str(found.value)
    policy = NotifierPolicy.model_validate({"channels": {"oncall_page": {"kind": "apprise"}}})
    with pytest.raises(ValueError, match="NOTIFIER_CHANNELS__ONCALL_PAGE__URL"):
        ChannelSender(policy=policy, http=httpx.AsyncClient())
