"""In a real browser (Debian's Chromium through Playwright) on the running native stack: OFREP evaluations of
`gamification` through the front door show on its console page as users of the last hour, next to the
rollout slider. Read-only: no sign-in, no change to the flag."""

from __future__ import annotations

import asyncio
import os
import re
import uuid

import httpx
import pytest

from tests.e2e.browser import CHROMIUM
from tests.e2e.test_runbook_loop import FLAG, FRONT

pytestmark = pytest.mark.e2e
USERS = 40


async def _users(http: httpx.AsyncClient) -> int:
    r = await http.get(f"{FRONT}/api/flags/{FLAG}/exposure")
    assert r.status_code == 200, r.text
    return int(r.json()["users_last_hour"])


async def test_evaluations_show_as_users_of_the_last_hour_on_the_flags_page() -> None:
    from playwright.async_api import async_playwright

    assert os.path.exists(CHROMIUM), f"no {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=5) as http:
        before = await _users(http)
        for i in range(USERS):
            r = await http.post(f"{FRONT}/ofrep/v1/evaluate/flags/{FLAG}",
                                json={"context": {"targetingKey": f"e2e-exposure-{run}-{i}"}})
            assert r.status_code == 200, r.text
        for _ in range(50):  # the flags service writes its buffer to Redis every second
            if await _users(http) >= before + USERS * 0.95:
                break
            await asyncio.sleep(0.1)
        after = await _users(http)
    assert after >= before + USERS * 0.95, (before, after)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(f"{FRONT}/console/flags/{FLAG}")
            text = await page.locator("#exposure").inner_text()
        finally:
            await browser.close()
    found = re.search(r"~([\d,]+) users in the last hour", text)
    assert found and int(found.group(1).replace(",", "")) >= after, text
