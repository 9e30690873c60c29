"""A stdlib HTTP server on a loopback port, served from a thread for the length of a `with` block (receivers
and collectors in tests: webhooks, Zipkin, a front door that is not there)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer
from typing import TypeVar

__all__ = ["serving"]

S = TypeVar("S", bound=HTTPServer)


@contextmanager
def serving(server: S) -> Iterator[S]:
    """Serve `server` (already bound, e.g. to ("127.0.0.1", 0)) until the block ends, then close it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
