import json
import logging

from opentelemetry import trace

from shared.logging import JsonFormatter, redact


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
