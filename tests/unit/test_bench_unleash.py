"""bench/_unleash_load.py: the wrk script it writes and its Python load against a real local HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench._unleash_load import Request, _lua, _python, contexts


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str]] = []

    def _answer(self, body: str) -> None:
        self.seen.append((self.command, self.path, body))
        status = 429 if "user-3" in self.path + body else 200  # one context of three is refused
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        assert self.headers["Authorization"] == "tok"
        self._answer("")

    def do_POST(self) -> None:  # noqa: N802
        self._answer(self.rfile.read(int(self.headers["Content-Length"])).decode())

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 64  # the load opens 16 connections at once; the default backlog of 5 resets some
    daemon_threads = True


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.seen = []
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_lua_headers_are_not_read_as_a_long_string() -> None:
    # `wrk.headers[[==[Authorization]==]]` is a Lua syntax error; wrk then goes on with plain GETs
    lua = _lua(Request.frontend("http://127.0.0.1:1", contexts(2), "tok"))
    assert "wrk.headers[ [==[Authorization]==] ] = [==[tok]==]" in lua
    assert "[==[/api/frontend?userId=user-1&email=user-1%40example.com]==]" in lua


async def test_python_load_cycles_the_contexts_and_counts_only_2xx(server: str) -> None:
    figures = await _python(Request.frontend(server, contexts(3), "tok"), 0.5)
    paths = {path for _, path, _ in _Handler.seen}
    assert paths == {f"/api/frontend?userId=user-{i}&email=user-{i}%40{d}"
                     for i, d in ((1, "example.com"), (2, "example.com"), (3, "other.org"))}
    assert figures.total == len(_Handler.seen) > 30
    assert figures.non_2xx == sum(1 for _, p, _ in _Handler.seen if "user-3" in p) > 0
    assert figures.ok_rps < figures.rps


async def test_python_load_posts_ofrep_bodies(server: str) -> None:
    await _python(Request.ofrep(server, "flag-x", contexts(2), {}), 0.3)
    assert {(m, p) for m, p, _ in _Handler.seen} == {("POST", "/ofrep/v1/evaluate/flags/flag-x")}
    assert {b for _, _, b in _Handler.seen} == {
        '{"context": {"targetingKey": "user-1", "email": "user-1@example.com"}}',
        '{"context": {"targetingKey": "user-2", "email": "user-2@example.com"}}'}
