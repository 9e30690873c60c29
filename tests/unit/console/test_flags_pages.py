"""The flags pages against a fake flags API (httpx.MockTransport): what is sent upstream on whose behalf,
and how refusals come back. The real flags service: tests/integration/console/test_flags_console.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.console.app import create_app
from services.console.flag_views import changes, flag_view
from services.console.settings import ConsoleSettings
from shared.auth import AuthSettings
from tests.unit.console.test_auth import TOKEN, sign_in

FLAG = {"key": "checkout", "state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on",
        "targeting": {"fractional": [["on", 1000], ["off", 9000]]}, "offVariant": "off", "new": True,
        "killed": False, "rolloutPercent": 10.0, "description": "New checkout", "version": 3, "updatedAt": None}

# recovery does not answer: the flags pages show no kept-off marks, and the rest as usual
NO_RECOVERY = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404)), base_url="http://recovery")


class FakeFlags:
    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        if path == "/api/flags":
            return httpx.Response(200, json=[FLAG, {**FLAG, "key": "legacy", "description": "old search", "new": False,
                                                    "state": "DISABLED", "targeting": None, "rolloutPercent": None}])
        if path.endswith("/rollout"):
            return httpx.Response(409, json={"detail": "checkout has its own targeting: clear it first"})
        if path.endswith("/kill"):
            return httpx.Response(200, json={**FLAG, "state": "DISABLED", "killed": True, "rolloutPercent": None})
        return httpx.Response(404, json={"detail": "no such route in the fake"})


KEPT = {"flag": "checkout", "action_id": "a1", "service": "demo", "trigger": "error_rate_high", "episode_id": "ep1",
        "reason": "", "killed_at": "2026-11-30T18:42:00Z", "kept_off": True,
        "text": "turned off by recovery at 18:42 UTC for episode ep1 (demo, error_rate_high): stays off until a person"
                " turns it on"}


def _recovery(request: httpx.Request) -> httpx.Response:
    """Recovery keeps `checkout` off (GET /api/recovery/kept-off); `legacy` was turned back on by a person."""
    if request.url.path == "/api/recovery/kept-off":
        return httpx.Response(200, json=[KEPT, KEPT | {"flag": "legacy", "kept_off": False}])
    return httpx.Response(404, json={"detail": "no such route in the fake"})


@pytest.fixture
async def fake() -> AsyncIterator[tuple[httpx.AsyncClient, FakeFlags]]:
    flags = FakeFlags()
    upstream = httpx.AsyncClient(transport=httpx.MockTransport(flags.handle), base_url="http://flags")
    recovery = httpx.AsyncClient(transport=httpx.MockTransport(_recovery), base_url="http://recovery")
    app = create_app(ConsoleSettings(), auth=AuthSettings(env="local", admin_token=SecretStr(TOKEN)),
                     backends=SimpleNamespace(flags=upstream, recovery=recovery))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        yield c, flags
    await upstream.aclose()
    await recovery.aclose()


async def test_the_list_marks_the_flags_recovery_keeps_off(fake: tuple[httpx.AsyncClient, FakeFlags]) -> None:
    c, _ = fake
    page = (await c.get("/console/flags")).text
    checkout, legacy = page.split('id="flag-row-checkout"')[1], page.split('id="flag-row-legacy"')[1]
    assert "kept off by recovery: turned off by recovery at 18:42 UTC" in checkout.split("</tr>")[0]
    assert "stays off until a person turns it on" in checkout.split("</tr>")[0]
    assert "kept off by recovery" not in legacy.split("</tr>")[0]  # a person turned it back on


def _csrf(page: str) -> str:
    return page.split('"X-CSRF-Token": "')[1].split('"')[0]


async def test_search_answers_the_rows_alone_for_htmx(fake: tuple[httpx.AsyncClient, FakeFlags]) -> None:
    c, _ = fake
    page = (await c.get("/console/flags")).text
    assert "checkout" in page and "legacy" in page and "10 % on, 90 % off" in page and "On for 10 %" in page
    rows = await c.get("/console/flags", params={"q": "SEARCH old"}, headers={"HX-Request": "true", "HX-Target": "flag-rows"})
    assert rows.text.lstrip().startswith('<tbody id="flag-rows">') and "legacy" in rows.text
    assert "checkout" not in rows.text and "<html" not in rows.text
    none = await c.get("/console/flags", params={"q": "nothing-like-this"}, headers={"HX-Request": "true", "HX-Target": "flag-rows"})
    assert "No flag matches" in none.text


async def test_read_only_shows_no_buttons_and_changes_need_a_session(fake: tuple[httpx.AsyncClient, FakeFlags]) -> None:
    c, flags = fake
    page = (await c.get("/console/flags")).text
    assert "Kill all new features" not in page and 'data-action="kill"' not in page
    assert (await c.post("/console/flags/checkout/kill")).status_code == 401
    assert not [r for r in flags.seen if r.method == "POST"]


async def test_a_kill_goes_upstream_as_the_operator_with_the_prompted_reason(fake: tuple[httpx.AsyncClient, FakeFlags]) -> None:
    c, flags = fake
    await sign_in(c)
    csrf = _csrf((await c.get("/console/flags")).text)
    r = await c.post("/console/flags/checkout/kill", headers={
        "HX-Request": "true", "HX-Target": "flag-row-checkout", "X-CSRF-Token": csrf, "HX-Prompt": "error spike"})
    assert r.status_code == 200 and r.text.lstrip().startswith('<tr id="flag-row-checkout"') and "Killed" in r.text
    sent = flags.seen[-1]
    assert sent.headers["authorization"] == f"Bearer {TOKEN}" and sent.headers["x-safeguard-actor"] == "alice"
    assert json.loads(sent.content) == {"reason": "error spike"}


async def test_a_refusal_comes_back_with_its_status_and_message(fake: tuple[httpx.AsyncClient, FakeFlags]) -> None:
    c, _ = fake
    await sign_in(c)
    csrf = _csrf((await c.get("/console/flags")).text)
    r = await c.post("/console/flags/checkout/rollout", data={"percent": "50", "csrf": csrf},
                     headers={"HX-Request": "true", "HX-Target": "flag-detail"})
    assert r.status_code == 409 and "own targeting: clear it first" in r.text
    assert r.headers["hx-retarget"] == "#flash"
    plain = await c.post("/console/flags/checkout/rollout", data={"percent": "50", "csrf": csrf})
    assert plain.status_code == 409 and "<html" in plain.text and "clear it first" in plain.text
    bad = await c.post("/console/flags/checkout/rollout", data={"percent": "150", "csrf": csrf})
    assert bad.status_code == 422


def test_an_audit_entry_lists_what_changed() -> None:
    before: dict[str, Any] = {"definition": {"state": "ENABLED", "variants": {"on": True, "off": False}},
                              "killed": False, "rollout_percent": None, "new": True}
    after = {**before, "definition": {**before["definition"], "state": "DISABLED"}, "killed": True}
    assert changes(before, after) == [("state", "ENABLED", "DISABLED"), ("killed", "false", "true")]
    rolled = {**before, "rollout_percent": 10.0,
              "definition": {**before["definition"], "targeting": {"fractional": [["on", 1000], ["off", 9000]]}}}
    assert changes(before, rolled) == [("rollout", "(none)", "10.0"), ("targeting", "(none)", "10 % on, 90 % off")]
    assert ("state", "(none)", "ENABLED") in changes(None, before)
    assert flag_view({**FLAG, "killed": True})["state"] == "Killed"


async def test_a_long_list_comes_a_page_at_a_time() -> None:
    many = [{**FLAG, "key": f"f-{i:03d}"} for i in range(250)]
    upstream = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200, json=many)),
                                 base_url="http://flags")
    app = create_app(ConsoleSettings(), auth=AuthSettings(env="local", admin_token=SecretStr(TOKEN)),
                     backends=SimpleNamespace(flags=upstream, recovery=NO_RECOVERY))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        first = (await c.get("/console/flags")).text
        assert first.count('class="flag-row"') == 100 and "f-099" in first and "f-100" not in first
        assert "Show 100 more (of 250)" in first
        more = {"HX-Request": "true", "HX-Target": "flag-more"}
        last = (await c.get("/console/flags", params={"page": 3}, headers=more)).text
        assert last.count('class="flag-row"') == 50 and "f-249" in last and "more (of" not in last
        assert "<tbody" not in last  # appended in place of the "show more" row
        found = (await c.get("/console/flags", params={"q": "f-2"}, headers={**more, "HX-Target": "flag-rows"})).text
        assert found.count('class="flag-row"') == 50 and "more (of" not in found
        assert (await c.get("/console/flags", params={"page": 0})).status_code == 422
    await upstream.aclose()


async def test_a_link_cannot_put_words_on_the_page(fake: tuple[httpx.AsyncClient, FakeFlags]) -> None:
    c, _ = fake
    for params in ({"flash": "Your token expired: re-enter it at evil.example"}, {"done": "evil.example"}):
        page = (await c.get("/console/flags", params=params)).text
        assert "evil.example" not in page and 'class="flash' not in page
    assert "Every new feature that was on is killed" in (await c.get("/console/flags", params={"done": "kill-new"})).text


def test_a_flags_page_marks_it_while_its_newest_change_is_recoverys_kill() -> None:
    from services.console.kept_off import kept_off_by_audit

    kill = {"actor": "admin:recovery", "action": "killed", "at": "2026-11-30T18:42:07+00:00",
            "reason": "recovery: error_rate_high: error rate 31 % > 5 %"}
    assert kept_off_by_audit([kill]) == ("turned off by recovery at 18:42 UTC: recovery: error_rate_high: error rate "
                                         "31 % > 5 %: stays off until a person turns it on")
    assert kept_off_by_audit([kill | {"actor": "admin:bob", "action": "enabled"}, kill]) == ""
    assert kept_off_by_audit([kill | {"actor": "admin:bob"}]) == ""  # a person's kill is theirs
    assert kept_off_by_audit([]) == ""
