"""The OFREP request span is sampled parent-based: a sampled traceparent is followed, an unsampled one is not,
no traceparent takes the ratio; every other request keeps its span."""

from __future__ import annotations

from services.flags.ofrep import untraced

SAMPLED = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
NOT_SAMPLED = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


def _scope(path: str, traceparent: bytes | None = None) -> dict[str, object]:
    headers = [(b"content-type", b"application/json")]
    if traceparent is not None:
        headers.append((b"traceparent", traceparent))
    return {"type": "http", "path": path, "headers": headers}


def test_parent_decides_when_present() -> None:
    never, always = untraced(ratio=0.0), untraced(ratio=1.0)
    assert not never(_scope("/ofrep/v1/evaluate/flags/x", SAMPLED))
    assert always(_scope("/ofrep/v1/evaluate/flags", NOT_SAMPLED))


def test_ratio_without_parent() -> None:
    assert untraced(ratio=0.0)(_scope("/ofrep/v1/evaluate/flags/x"))
    assert not untraced(ratio=1.0)(_scope("/ofrep/v1/evaluate/flags/x"))
    assert untraced(ratio=0.0)(_scope("/ofrep/v1/evaluate/flags/x", b"garbage"))
    share = sum(not untraced(ratio=0.25)(_scope("/ofrep/v1/evaluate/flags")) for _ in range(4000)) / 4000
    assert 0.2 < share < 0.3


def test_other_requests_keep_their_span() -> None:
    exclude = untraced(ratio=0.0)
    assert not exclude(_scope("/api/flags/x/kill"))
    assert not exclude(_scope("/api/flags", NOT_SAMPLED))
