"""stackutil.py wait-health, the last wait of `make up`: pass -> 0, warn -> said loudly but 0,
fail or no answer -> 1 with what is not passing. Against a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.unit.stack._load import load_stack_module

su = load_stack_module("stackutil")


class _Health(BaseHTTPRequestHandler):
    answers: list[tuple[int, bytes]] = []  # served in turn, the last one again and again

    def do_GET(self) -> None:  # noqa: N802
        code, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Health", (_Health,), {"answers": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/health", handler
    server.shutdown()
    server.server_close()


def _doc(status: str, **checks: str) -> bytes:
    return json.dumps({"status": status, "checks": {k: [{"status": v, "output": f"{k} is {v}"}] for k, v in checks.items()}}).encode()


def test_waits_through_fail_until_pass(health: tuple[str, type[_Health]]) -> None:
    url, handler = health
    handler.answers = [(503, _doc("fail", kafka="fail")), (200, _doc("pass", kafka="pass"))]
    assert su.wait_health(url, "10") == 0


def test_warn_at_the_deadline_is_said_but_does_not_fail(health: tuple[str, type[_Health]],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    url, handler = health
    handler.answers = [(200, _doc("warn", demo="warn", kafka="pass"))]
    assert su.wait_health(url, "0.3") == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "not passing: demo warn (demo is warn)" in err and "kafka" not in err


def test_fail_at_the_deadline_fails_and_names_the_checks(health: tuple[str, type[_Health]],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    url, handler = health
    handler.answers = [(503, _doc("fail", postgres="fail"))]
    assert su.wait_health(url, "0.3") == 1
    assert "ERROR" in (err := capsys.readouterr().err) and "postgres fail (postgres is fail)" in err


def test_an_answer_that_is_not_json_is_no_answer(health: tuple[str, type[_Health]],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    url, handler = health
    handler.answers = [(502, b"<html>bad gateway</html>")]
    assert su.wait_health(url, "0.3") == 1
    assert "no answer (HTTP 502)" in capsys.readouterr().err
