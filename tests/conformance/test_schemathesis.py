"""Property-based API tests: the official OFREP spec and our own OpenAPI, against a running service.

No answer may be a 5xx, and every documented answer must match its schema. Two documented changes to
the official spec (0.3.0), both bugs or gaps in it:
- `DEFAULT` is added to the reason enum (flagd and the testbed send it; the spec lacks it).
- `evaluationSuccess`'s `oneOf` of value types becomes `anyOf`: `codeDefaultFlag` (an object with no
  constraints) matches every answer and an integer matches both `integerFlag` and `floatFlag`, so with
  `oneOf` no answer that carries a value can ever validate.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from schemathesis import GenerationMode
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conformance.conftest import CONFORMANCE, Server
from tests.integration.flags.conftest import ADMIN


def _official() -> dict[str, Any]:
    spec = yaml.safe_load((CONFORMANCE / "ofrep-openapi.yaml").read_text())
    spec = copy.deepcopy(spec)
    reason = spec["components"]["schemas"]["evaluationSuccess"]["allOf"][0]["properties"]["reason"]
    reason["enum"] = [*reason["enum"], "DEFAULT"]
    success = spec["components"]["schemas"]["evaluationSuccess"]["allOf"][1]
    success["anyOf"] = success.pop("oneOf")
    return spec


def _ours() -> dict[str, Any]:
    from services.flags.app import create_app
    from services.flags.settings import FlagsSettings
    raw = create_app(FlagsSettings()).openapi()  # builds the spec only: no I/O
    raw["paths"].pop("/api/flags/_stream", None)  # an endless SSE stream: tested in the SDK tests
    return raw


OFFICIAL = schemathesis.openapi.from_dict(_official())
OURS = schemathesis.openapi.from_dict(_ours())
_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _operations(schema: Any) -> list[Any]:
    return [r.ok() for r in schema.get_all_operations()]


def _run(operation: Any, base_url: str, headers: dict[str, str] | None = None) -> None:
    """Valid and invalid requests (negative mode: wrong types, missing fields): never a 5xx."""
    strategy = operation.as_strategy() | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)

    @given(case=strategy)
    @_SETTINGS
    def check(case: Any) -> None:
        checks = [not_a_server_error]
        if case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE:
            checks.append(response_schema_conformance)
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks)
    check()


@pytest.mark.parametrize("operation", _operations(OFFICIAL), ids=lambda o: o.label)
def test_official_ofrep_spec(operation: Any, flags_server: Server) -> None:
    _run(operation, flags_server.url)


@pytest.mark.parametrize("operation", _operations(OURS), ids=lambda o: o.label)
def test_our_openapi_no_5xx(operation: Any, flags_server: Server) -> None:
    _run(operation, flags_server.url, ADMIN)


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    jsonschema_rs.validator_for(schema).validate(instance)


def test_known_flags_answer_per_official_schema(flags_server: Server) -> None:
    """Random keys are mostly 404s: also check real answers of every testbed flag against the spec."""
    spec = _official()
    schemas = spec["components"]["schemas"]
    registry_doc = {"components": {"schemas": schemas}}
    success = {"$ref": "#/components/schemas/serverEvaluationSuccess", **registry_doc}
    failure = {"$ref": "#/components/schemas/evaluationFailure", **registry_doc}
    flags = httpx.get(flags_server.url + "/api/flags").json()
    assert len(flags) >= 60
    for f in flags:
        r = httpx.post(f"{flags_server.url}/ofrep/v1/evaluate/flags/{f['key']}",
                       json={"context": {"targetingKey": "user-1", "email": "ballmer@macrosoft.com"}})
        assert r.status_code in (200, 400), r.text
        _validate(r.json(), success if r.status_code == 200 else failure)
    bulk = httpx.post(flags_server.url + "/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "u"}})
    _validate(bulk.json(), {"$ref": "#/components/schemas/bulkEvaluationSuccess", **registry_doc})
