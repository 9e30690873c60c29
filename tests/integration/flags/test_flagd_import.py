"""Any flagd file imports unchanged with the default import; the answer says which flags cannot be killed yet."""

from __future__ import annotations

from typing import Any

from tests.conformance.conftest import load
from tests.integration.flags.conftest import ADMIN, Flags

PLAIN = {"$schema": "https://flagd.dev/schema/v0/flags.json",
         "metadata": {"flagSetId": "shop", "version": "7"},
         "$evaluators": {"is_beta": {"ends_with": [{"var": "email"}, "@beta.example"]}},
         "flags": {
             "theme": {"state": "ENABLED", "variants": {"dark": "dark", "light": "light"}, "defaultVariant": "light",
                       "targeting": {"if": [{"$ref": "is_beta"}, "dark", None]}, "metadata": {"version": "8"}},
             "banner": {"state": "DISABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"}}}


async def _ofrep(f: Flags, key: str, ctx: dict[str, Any]) -> dict[str, Any]:
    r = await f.client.post(f"/ofrep/v1/evaluate/flags/{key}", json={"context": ctx})
    return {"status": r.status_code, **r.json()}


async def test_a_plain_flagd_file_imports_with_the_default(flags: Flags) -> None:
    r = await flags.client.post("/api/flags/_import", json=PLAIN, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": ["theme", "banner"], "cannot_kill": ["theme"], "parse_errors": {}}
    beta = await _ofrep(flags, "theme", {"targetingKey": "u", "email": "a@beta.example"})
    assert (beta["value"], beta["reason"]) == ("dark", "TARGETING_MATCH")
    assert beta["metadata"] == {"flagSetId": "shop", "version": "8"}  # the flag's own key wins, as in flagd
    assert (await _ofrep(flags, "banner", {}))["value"] is False  # DISABLED boolean: its false variant
    refused = await flags.client.post("/api/flags/theme/kill", headers=ADMIN)
    assert refused.status_code == 422 and "off variant" in refused.text
    assert (await flags.client.patch("/api/flags/theme", json={"offVariant": "light"}, headers=ADMIN)).is_success
    assert (await flags.client.post("/api/flags/theme/kill", headers=ADMIN)).status_code == 200
    killed = await _ofrep(flags, "theme", {"targetingKey": "u", "email": "a@beta.example"})
    assert (killed["value"], killed["reason"]) == ("light", "DISABLED")
    again = await flags.client.post("/api/flags/_import", json=PLAIN, headers=ADMIN)
    assert again.json()["cannot_kill"] == []  # a re-import keeps the off variant set since


async def test_strict_still_refuses_what_cannot_be_killed_or_run(flags: Flags) -> None:
    r = await flags.client.post("/api/flags/_import?strict=true", json=PLAIN, headers=ADMIN)
    assert r.status_code == 422 and "offVariant" in r.text
    broken = {"flags": {"b": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on",
                              "targeting": {"no_such_op": [1]}}}}
    assert (await flags.client.post("/api/flags/_import?strict=true", json=broken, headers=ADMIN)).status_code == 422
    loose = await flags.client.post("/api/flags/_import", json=broken, headers=ADMIN)
    assert loose.status_code == 200 and "no_such_op" in loose.json()["parse_errors"]["b"]
    assert (await _ofrep(flags, "b", {}))["errorCode"] == "PARSE_ERROR"
    bad_set = {**PLAIN, "metadata": {"nested": {"no": 1}}}
    assert (await flags.client.post("/api/flags/_import", json=bad_set, headers=ADMIN)).status_code == 422


async def test_flagd_testbed_file_imports_with_the_default(flags: Flags) -> None:
    testbed = load("flagd_testbed_flags.json")
    r = await flags.client.post("/api/flags/_import", json=testbed, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(body["imported"]) == sorted(testbed["flags"])
    assert set(body["parse_errors"]) == {"error-targeting-flag", "ref-to-nonexistent-evaluator-flag"}
    assert "string-flag" in body["cannot_kill"] and "boolean-flag" not in body["cannot_kill"]
