"""Structured JSON logs carrying the current trace and span ids; secrets never reach them; a warning or error
repeated word for word many times a second (a client library retrying while Kafka is away) is logged a few
times per window, with a count of the rest (`RepeatFilter`)."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

__all__ = ["JsonFormatter", "RepeatFilter", "configure_logging", "quiet_repeats", "redact"]

_SECRET_KEY = re.compile(r"(pass(word)?|secret|token|authorization|api[_-]?key|dsn|cookie)", re.I)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@", re.I)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def redact(value: Any, key: str = "") -> Any:
    """Mask secrets: values under secret-looking keys, URL passwords and bearer tokens."""
    if key and _SECRET_KEY.search(key):
        return "***"
    if isinstance(value, str):
        return _BEARER.sub(r"\1***", _URL_PASSWORD.sub(r"\g<scheme>***@", value))
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


class RepeatFilter(logging.Filter):
    """A warning or error logged again word for word (same logger, level, text and exception type): the first
    `burst` of each `window_s` pass, the others are held back and counted, and the first such line after the
    window carries the count as `suppressed` (and `suppressed_since`, Unix seconds), as journald's rate limit
    reports it. Lines below WARNING (notices of the log channel, who changed what) and lines whose text
    differs (another flag, another partition) always pass.

    While Kafka is away, aiokafka logs each failed connect and metadata refresh, 10-30 lines a second per
    client: left alone, that buried every other line of an outage (11,111 lines in one service's log)."""

    def __init__(self, *, burst: int = 3, window_s: float = 30.0, max_kinds: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window_s, self.max_kinds, self._clock = burst, window_s, max_kinds, clock
        self._kinds: dict[tuple[str, int, str, str], list[float]] = {}  # -> [window start, passed, held, first held]
        self._lock = threading.Lock()  # records come from threads too (exporters, to_thread)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: the handler reports it
            return True
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        kind, now = (record.name, record.levelno, text, exc), self._clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen[0] < self.window_s:
                if seen[1] < self.burst:
                    seen[1] += 1
                    return True
                if not seen[2]:
                    seen[3] = record.created
                seen[2] += 1
                return False
            if seen is None and len(self._kinds) >= self.max_kinds:
                self._kinds = {k: v for k, v in self._kinds.items() if now - v[0] < self.window_s}
                if len(self._kinds) >= self.max_kinds:  # a flood of distinct lines: start counting afresh
                    self._kinds.clear()
            self._kinds[kind] = [now, 1, 0, 0.0]
        if seen is not None and seen[2]:
            record.suppressed, record.suppressed_since = int(seen[2]), round(seen[3], 3)
        return True


class _Held(logging.Formatter):
    """A text formatter's line, with the count `RepeatFilter` held back before this record (JSON has it as a field)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        held = getattr(record, "suppressed", 0)
        return f"{line} [{held} more like this held back since the last one logged]" if held else line


def quiet_repeats(handler: logging.Handler) -> None:
    """`handler` holds back repeats (`RepeatFilter`) and says how many it held; once per handler."""
    if any(isinstance(f, RepeatFilter) for f in handler.filters):
        return
    handler.addFilter(RepeatFilter())
    if not isinstance(handler.formatter, JsonFormatter):
        handler.setFormatter(_Held(handler.formatter or logging.Formatter()))


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            out["trace_id"] = format(ctx.trace_id, "032x")
            out["span_id"] = format(ctx.span_id, "016x")
        for k, v in record.__dict__.items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = redact(v, k)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    quiet_repeats(handler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
