"""The flags pages on the REAL running flags service: what the page shows is what the service holds, and
every change made from the console lands there, audited as `admin:<the operator>` with the reason given."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.console.conftest import Console

MakeFlag = Callable[..., Awaitable[dict[str, Any]]]
EMAIL_RULE = {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}


async def _flag(console: Console, key: str) -> dict[str, Any]:
    r = await console.flags.get(f"/api/flags/{key}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_the_list_and_search_show_state_and_targeting_readably(console: Console, make_flag: MakeFlag) -> None:
    ruled = await make_flag("ruled", state="ENABLED", targeting=EMAIL_RULE, description="email beta")
    rolled = await make_flag("rolled", description="gradual thing")
    r = await console.flags.post(f"/api/flags/{rolled['key']}/rollout", json={"percent": 10})
    assert r.status_code == 200, r.text

    page = html.unescape((await console.client.get("/console/flags", params={"q": console.prefix})).text)
    assert 'email ends with "@example.com" -> on; otherwise off' in page
    assert "10 % on, 90 % off" in page and "On for 10 %" in page and "Kill all new features" in page
    rows = await console.client.get("/console/flags", params={"q": f"{console.prefix} BETA"},
                                    headers=console.htmx("flag-rows"))
    assert ruled["key"] in rows.text and rolled["key"] not in rows.text and "<html" not in rows.text


async def test_kill_enable_disable_land_in_the_service_audited_as_the_operator(console: Console, make_flag: MakeFlag) -> None:
    key = (await make_flag("toggle", state="ENABLED"))["key"]
    row = await console.client.post(f"/console/flags/{key}/kill",
                                    headers=console.htmx(f"flag-row-{key}", **{"HX-Prompt": "checkout errors"}))
    assert row.status_code == 200, row.text
    assert f'id="flag-row-{key}"' in row.text and ">Killed<" in row.text
    found = await _flag(console, key)
    assert (found["state"], found["killed"]) == ("DISABLED", True)
    [entry, *_] = (await console.flags.get(f"/api/flags/{key}/audit")).json()
    assert (entry["actor"], entry["action"], entry["reason"]) == (f"admin:{console.operator}", "killed", "checkout errors")

    # the flag's page: its audit log with who, why, before -> after
    page = html.unescape((await console.client.get(f"/console/flags/{key}")).text)
    assert f"admin:{console.operator}" in page and "checkout errors" in page and "<b>killed</b> false → true" in page

    plain = await console.client.post(f"/console/flags/{key}/enable", data={"csrf": console.csrf, "reason": "fixed"})
    assert plain.status_code == 303 and plain.headers["location"] == f"/console/flags/{key}?done=changed"
    assert (await _flag(console, key))["state"] == "ENABLED"
    detail = await console.client.post(f"/console/flags/{key}/disable", headers=console.htmx("flag-detail"))
    assert detail.status_code == 200 and 'id="flag-detail"' in detail.text and f"{key}: disabled" in detail.text
    assert (await _flag(console, key))["state"] == "DISABLED"


async def test_the_rollout_slider_sets_the_percent_and_a_refusal_says_why(console: Console, make_flag: MakeFlag) -> None:
    key = (await make_flag("slider"))["key"]
    for percent in ("10", "50", "37.5", "100"):
        r = await console.client.post(f"/console/flags/{key}/rollout", data={"percent": percent, "reason": "slide"},
                                      headers=console.htmx("flag-detail"))
        assert r.status_code == 200, r.text
        assert (await _flag(console, key))["rolloutPercent"] == float(percent)
    assert "On for 100 %" in r.text

    ruled = (await make_flag("has-rule", targeting=EMAIL_RULE))["key"]
    refused = await console.client.post(f"/console/flags/{ruled}/rollout", data={"percent": "10"},
                                        headers=console.htmx("flag-detail"))
    assert refused.status_code == 409 and "targeting" in refused.text, refused.text
    assert (await _flag(console, ruled))["rolloutPercent"] is None


async def test_a_scheduled_change_is_listed_and_can_be_cancelled(console: Console, make_flag: MakeFlag) -> None:
    key = (await make_flag("later"))["key"]
    at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    r = await console.client.post(f"/console/flags/{key}/schedule", headers=console.htmx("flag-detail"),
                                  data={"action": "rollout", "percent": "25", "at": at, "reason": "launch"})
    assert r.status_code == 200, r.text
    [pending] = (await console.flags.get(f"/api/flags/{key}/schedule")).json()
    assert (pending["action"], pending["percent"], pending["status"]) == ("rollout", 25.0, "pending")
    assert pending["run_at"].startswith(at.replace("T", "T")) and pending["requested_by"] == f"admin:{console.operator}"
    assert "rollout to 25 %" in r.text and "launch" in r.text

    gone = await console.client.post(f"/console/flags/{key}/schedule/{pending['id']}/cancel", headers=console.htmx("flag-detail"))
    assert gone.status_code == 200, gone.text
    [cancelled] = (await console.flags.get(f"/api/flags/{key}/schedule")).json()
    assert cancelled["status"] != "pending"


async def test_bad_input_is_a_4xx_that_says_what_is_wrong(console: Console, make_flag: MakeFlag) -> None:
    key = (await make_flag("bad"))["key"]
    c = console.client
    missing = await c.get(f"/console/flags/{console.prefix}nope")
    assert missing.status_code == 404 and "nope" in missing.text
    assert (await c.post(f"/console/flags/{key}/rollout", data={"percent": "lots", "csrf": console.csrf})).status_code == 422
    assert (await c.post(f"/console/flags/{key}/explode", data={"csrf": console.csrf})).status_code == 422
    assert (await c.post("/console/flags/bad key!/kill", data={"csrf": console.csrf})).status_code in (404, 422)
    past = await c.post(f"/console/flags/{key}/schedule", data={"csrf": console.csrf, "action": "rollout", "at": "2030-01-01T10:00"})
    assert past.status_code == 422 and "percent" in past.text
    no_csrf = await c.post(f"/console/flags/{key}/kill")
    assert no_csrf.status_code == 403
    assert (await _flag(console, key))["killed"] is False  # nothing half-done
