"""The flag's page says how many of the last hour's users the rollout reaches (the flags service's
`GET /api/flags/{key}/exposure`, faked here), and shows the rest of the page when that count is unavailable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.console.app import create_app
from services.console.flag_views import exposure_view
from services.console.settings import ConsoleSettings
from shared.auth import AuthSettings
from tests.unit.console.test_auth import TOKEN, sign_in
from tests.unit.console.test_flags_pages import FLAG

# recovery does not answer: the flags pages show no kept-off marks, and the rest as usual
NO_RECOVERY = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404)), base_url="http://recovery")


class Upstream:
    def __init__(self) -> None:
        self.exposure: httpx.Response = httpx.Response(200, json={"users_last_hour": 1234, "in": 123,
                                                                  "window_s": 3600, "approximate": True})

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/flags/checkout":
            return httpx.Response(200, json=FLAG)
        if path.endswith("/audit") or path.endswith("/schedule"):
            return httpx.Response(200, json=[])
        if path == "/api/flags/checkout/exposure":
            return self.exposure
        return httpx.Response(404, json={"detail": "no such route in the fake"})


@pytest.fixture
async def page() -> AsyncIterator[tuple[httpx.AsyncClient, Upstream]]:
    upstream = Upstream()
    flags = httpx.AsyncClient(transport=httpx.MockTransport(upstream.handle), base_url="http://flags")
    app = create_app(ConsoleSettings(), auth=AuthSettings(env="local", admin_token=SecretStr(TOKEN)),
                     backends=SimpleNamespace(flags=flags, recovery=NO_RECOVERY))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        yield c, upstream
    await flags.aclose()


async def test_the_page_shows_the_last_hours_users_and_what_the_slider_reaches(
        page: tuple[httpx.AsyncClient, Upstream]) -> None:
    c, upstream = page
    await sign_in(c)
    text = (await c.get("/console/flags/checkout")).text
    assert "~1,234 users in the last hour, ~123 (10 %) got it on." in text
    assert "at 10 %: ~123 of the last hour&#39;s users" in text  # FLAG is rolled out to 10 %
    assert "Math.round(1234 * this.value / 100)" in text
    upstream.exposure = httpx.Response(503, json={"errorCode": "UNAVAILABLE", "detail": "redis down"})
    down = await c.get("/console/flags/checkout")
    assert down.status_code == 200 and "Users in the last hour: unknown" in down.text and "Gradual rollout" in down.text


def test_the_words_for_no_users_and_for_a_share() -> None:
    assert exposure_view(None, percent=50) is None
    none = exposure_view({"users_last_hour": 0, "in": 0}, percent=50)
    assert none is not None and none["text"].startswith("No user evaluated this flag in the last hour")
    half = exposure_view({"users_last_hour": 20_000, "in": 9_990}, percent=25)
    assert half is not None and half["text"] == "~20,000 users in the last hour, ~9,990 (50 %) got it on."
    assert half["reach"] == "at 25 %: ~5,000 of the last hour's users"
