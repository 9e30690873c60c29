import json
import logging

import pytest
from opentelemetry import trace

from shared.logging import JsonFormatter, RepeatFilter, configure_logging, redact


def test_redacts_secrets_everywhere() -> None:
    assert redact({"password": "p", "nested": {"admin_token": "t"}, "ok": 1}) == {
        "password": "***", "nested": {"admin_token": "***"}, "ok": 1}
    assert redact("postgresql://safeguard:s3cret@127.0.0.1/db") == "postgresql://safeguard:***@127.0.0.1/db"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"


def test_json_lines_carry_trace_ids_and_extras(span_exporter: object) -> None:
    fmt = JsonFormatter("flags")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "dsn is redis://u:pw@h:1/0", None, None)
    record.token = "abc"
    record.flag = "gamification"
    with trace.get_tracer("t").start_as_current_span("s") as span:
        out = json.loads(fmt.format(record))
    assert out["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert out["msg"] == "dsn is redis://u:***@h:1/0"
    assert out["token"] == "***" and out["flag"] == "gamification" and out["service"] == "flags"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str = "Unable connect to node with id %s: %s", *args: object, name: str = "aiokafka",
            level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args or (1, "refused"), None)


def test_repeats_pass_a_few_times_per_window_then_the_next_one_says_how_many_were_held() -> None:
    clock = _Clock()
    f = RepeatFilter(burst=3, window_s=30, clock=clock)
    passed = [f.filter(_record()) for _ in range(100)]
    assert passed == [True] * 3 + [False] * 97
    assert f.filter(_record("Unable to update metadata from %s", [1]))  # another line passes
    clock.now += 29.9
    assert not f.filter(_record())
    clock.now += 0.2  # the window is over: the next one passes, with the count of what was held back
    after = _record()
    assert f.filter(after)
    assert after.suppressed == 98  # type: ignore[attr-defined]
    assert after.suppressed_since > 0  # type: ignore[attr-defined]
    again = _record()
    assert f.filter(again) and not hasattr(again, "suppressed")  # counted afresh


def test_only_the_same_warning_word_for_word_is_held_never_info() -> None:
    f = RepeatFilter(burst=1, window_s=30, clock=_Clock())
    assert f.filter(_record("flag %s turned off while the flag store is down", "a", level=logging.WARNING))
    assert f.filter(_record("flag %s turned off while the flag store is down", "b", level=logging.WARNING))
    assert not f.filter(_record("flag %s turned off while the flag store is down", "a", level=logging.WARNING))
    # notices of the log channel, who changed what: INFO is never held, however often
    assert all(f.filter(_record("notice [%s -> %s] %s", "log", "ops", "opened", level=logging.INFO))
               for _ in range(10))
    # the same text at another level, from another logger or with another exception is another line
    assert f.filter(_record(level=logging.ERROR)) and f.filter(_record(level=logging.WARNING))
    assert f.filter(_record(name="aiokafka.consumer"))
    assert not f.filter(_record(level=logging.ERROR))
    with_exc = _record()
    with_exc.exc_info = (TimeoutError, TimeoutError(), None)
    assert f.filter(with_exc)


def test_kinds_are_bounded() -> None:
    clock = _Clock()
    f = RepeatFilter(burst=1, window_s=30, max_kinds=10, clock=clock)
    for i in range(25):
        assert f.filter(_record(f"distinct message {i}"))
    assert len(f._kinds) <= 10


def test_the_count_is_in_json_and_in_text_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        for fmt in ("json", "text"):
            configure_logging("flags", fmt=fmt)
            log = logging.getLogger("aiokafka")
            for _ in range(50):
                log.error("Unable to update metadata from %s", [1])
            assert len(capsys.readouterr().err.splitlines()) == 3
            f = next(x for x in root.handlers[0].filters if isinstance(x, RepeatFilter))
            f.window_s = 0.0  # the window is over
            log.error("Unable to update metadata from %s", [1])
            line = capsys.readouterr().err.strip()
            if fmt == "json":
                assert json.loads(line)["suppressed"] == 47
            else:
                assert line.endswith("[47 more like this held back since the last one logged]")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def test_the_sla_worker_holds_back_repeats_on_faust_s_own_handlers() -> None:
    from services.sla.__main__ import Worker

    logger = logging.getLogger("test-sla-root")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    logger.handlers[:] = [handler]
    worker = Worker.__new__(Worker)
    worker.spinner = None
    Worker.on_setup_root_logger(worker, logger, logging.INFO)
    assert any(isinstance(f, RepeatFilter) for f in handler.filters)
    record = _record()
    record.suppressed = 5
    assert handler.format(record).endswith("[5 more like this held back since the last one logged]")
