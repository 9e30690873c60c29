"""flagd's testbed vectors through our API and OFREP endpoint (and the OpenFeature SDK + OFREP provider).

Every current (v3) vector must pass. The only deviations are our kill policy, listed in KILL_POLICY:
a DISABLED boolean flag serves its off variant (`off`, value false) instead of flagd's code default
with no variant; the value the testbed expects is the same, only the variant differs.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conformance.conftest import Server, load

VECTORS = [v for v in load("flagd_testbed_vectors.json") if not v.get("legacy_fractional")]
KILL_POLICY = {"disabled-boolean-flag", "cross-flagset-flag"}  # variant "off" where flagd gives none
_TYPES: dict[str, tuple[type, ...]] = {"boolean": (bool,), "string": (str,), "integer": (int,),
                                       "float": (int, float), "object": (dict, list)}


def _typed(value: Any, kind: str) -> bool:
    if kind in ("integer", "float") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def resolve(r: httpx.Response, v: dict[str, Any]) -> tuple[Any, str | None, str | None, str | None]:
    """(value, variant, reason, error) the way flagd's OFREP providers map an answer (see the README)."""
    body = r.json()
    default = v["default"]
    if r.status_code == 404:
        return default, None, "ERROR", "FLAG_NOT_FOUND"
    if r.status_code != 200:
        return default, None, "ERROR", body.get("errorCode", "GENERAL")
    if "value" not in body:
        return default, body["variant"] or None, body["reason"], None
    if not _typed(body["value"], v["type"]):
        return default, None, "ERROR", "TYPE_MISMATCH"
    return body["value"], body["variant"], body["reason"], None


def test_every_current_vector_is_loaded() -> None:
    assert len(VECTORS) == 248


@pytest.mark.parametrize("v", VECTORS, ids=[f"{i}:{v['flag']}" for i, v in enumerate(VECTORS)])
def test_vector_through_ofrep(flags_server: Server, v: dict[str, Any]) -> None:
    r = httpx.post(f"{flags_server.url}/ofrep/v1/evaluate/flags/{v['flag']}", json={"context": v["context"]})
    assert r.status_code < 500, r.text
    if r.status_code == 200:
        assert isinstance(r.json().get("variant"), str), "variant is always sent"
    value, variant, reason, error = resolve(r, v)
    assert value == v["expected_value"], (r.json(), v["source"])
    assert type(value) is type(v["expected_value"]) or v["type"] == "float"
    if v["expected_error"] is not None:
        assert error == v["expected_error"], r.json()
    elif v.get("expect_no_error"):
        assert error is None, r.json()
    if v["expected_reason"] is not None and v["expected_error"] is None:
        assert reason == v["expected_reason"], r.json()
    if v["expected_variant"] is not None:
        assert variant == v["expected_variant"], r.json()
    elif v["expected_reason"] == "DISABLED" and v["flag"] in KILL_POLICY:
        assert variant == "off" and value is False  # our documented kill policy


def test_openfeature_sdk_with_ofrep_provider_unchanged(flags_server: Server) -> None:
    from openfeature import api
    from openfeature.contrib.provider.ofrep import OFREPProvider
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.flag_evaluation import Reason

    api.set_provider(OFREPProvider(flags_server.url), domain="conformance")
    client = api.get_client("conformance")
    assert client.get_boolean_value("boolean-flag", False) is True
    assert client.get_string_value("string-flag", "x") == "hi"
    assert client.get_integer_value("integer-flag", 1) == 10
    assert client.get_float_value("float-flag", 0.1) == 0.5
    assert client.get_object_value("object-flag", {})["title"] == "Check out these pics!"
    details = client.get_boolean_details("disabled-boolean-flag", True)  # code says true; the kill wins
    assert (details.value, details.reason, details.variant) == (False, Reason.DISABLED, "off")
    no_default = client.get_integer_details("undefined-default-flag", 7)
    assert (no_default.value, no_default.reason, no_default.error_code) == (7, Reason.DEFAULT, None)
    missing = client.get_boolean_details("no-such-flag", True)
    assert missing.value is True and missing.error_code is not None and missing.error_code.value == "FLAG_NOT_FOUND"
    ctx = EvaluationContext(targeting_key="jon@company.com")
    assert isinstance(client.get_string_value("fractional-flag-shorthand", "x", ctx), str)
