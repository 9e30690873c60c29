"""The console in a real browser (Debian's Chromium through Playwright) on the running native stack: sign in
with the admin token, kill `gamification` from the flags page and see the demo at :8100 serve it off, turn it
back on from the flag's page, and leave it as it was found. Screenshots of the overview, the flags page and
the flag's page go to docs/console-*.png and to the test artefacts (E2E_ARTEFACTS, default .stack/artefacts)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser import CHROMIUM
from tests.e2e.test_runbook_loop import DEMO, FLAG, FRONT, ROOT, _restore_flag, admin_token, until_status

pytestmark = pytest.mark.e2e

LEADERBOARD = "/api/gamification/leaderboard?user=e2e-console"
OPERATOR = "e2e-console"
DOCS = ROOT / "docs"
ARTEFACTS = Path(os.environ.get("E2E_ARTEFACTS", ROOT / ".stack" / "artefacts"))


async def _shot(page: object, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for folder in (ARTEFACTS, DOCS):
        await page.screenshot(path=str(folder / f"console-{name}.png"))  # type: ignore[attr-defined]


async def _flags_on(http: httpx.AsyncClient) -> int:
    return sum(1 for f in (await http.get(f"{FRONT}/api/flags")).json() if f["state"] == "ENABLED")


async def test_kill_gamification_from_the_console_and_the_demo_serves_it_off() -> None:
    from playwright.async_api import Dialog, async_playwright, expect

    assert os.path.exists(CHROMIUM), f"no {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
    auth = {"Authorization": f"Bearer {admin_token()}"}
    async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(keepalive_expiry=2.0)) as http:
        for url in (f"{FRONT}/console/login", f"{DEMO}/healthz"):
            assert (await http.get(url)).status_code == 200, f"{url} does not answer: run `make up`"
        found = (await http.get(f"{FRONT}/api/flags/{FLAG}")).json()
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                try:
                    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
                    page = await context.new_page()
                    asked: list[str] = []

                    async def answer(dialog: Dialog) -> None:  # hx-prompt / hx-confirm: accept, with a reason
                        asked.append(dialog.message)
                        await dialog.accept("e2e console test")
                    page.on("dialog", answer)

                    # sign in
                    await page.goto(f"{FRONT}/console/login?next=/console")
                    await page.fill("input[name=name]", OPERATOR)
                    await page.fill("input[name=token]", admin_token())
                    await page.click("button[type=submit]")
                    await expect(page.locator("header .session")).to_contain_text(OPERATOR)

                    # the overview, live: the stream swaps the body in (the banner stays on screen)
                    await expect(page.locator("#overall")).to_be_visible()
                    await expect(page.locator("#ov-services")).to_contain_text("flags")
                    await page.wait_for_function(
                        "() => document.querySelector('#overview')['htmx-internal-data']?.sseEventSource?.readyState === 1",
                        timeout=10_000)
                    await _shot(page, "overview")
                    watcher = await context.new_page()  # a second tab stays on the overview, never reloaded
                    await watcher.goto(f"{FRONT}/console")
                    banner = watcher.locator("#overall")
                    await page.bring_to_front()  # a background tab's timers are throttled (htmx's requests waited ~1 s)

                    # the flags page: search as you type
                    await page.click("nav >> text=Flags")
                    await page.fill("input[type=search]", FLAG)
                    row = page.locator(f"#flag-row-{FLAG}")
                    await page.wait_for_url(f"**/console/flags?q={FLAG}")  # the rows came back filtered (hx-push-url)
                    await expect(row).to_be_visible()
                    state = row.locator(".state")
                    if (await state.inner_text()) != "On":  # start from on, so "off" below is the console's doing
                        await row.locator("button[data-action=enable]").click()
                        await expect(state).to_have_text("On")
                    await until_status(http, LEADERBOARD, 200, timeout=3.0)
                    await expect(banner).to_contain_text(f"flags {await _flags_on(http)} on", timeout=10_000)

                    clicked = time.monotonic()
                    await row.locator("button[data-action=kill]").click()
                    await expect(state).to_have_text("Killed")
                    swapped = time.monotonic() - clicked
                    await until_status(http, LEADERBOARD, 404, timeout=5.0)
                    off_after = time.monotonic() - clicked
                    assert any(FLAG in a and "KILL" in a for a in asked), asked
                    now = (await http.get(f"{FRONT}/api/flags/{FLAG}")).json()
                    assert (now["state"], now["killed"]) == ("DISABLED", True)
                    # the overview tab saw the kill over its stream (health reads flags.state from Kafka)
                    await expect(banner).to_contain_text(f"flags {await _flags_on(http)} on", timeout=10_000)
                    await _shot(page, "flags")

                    # the flag's page: the kill in its audit log, then back on from there
                    await row.locator(f"a[href='/console/flags/{FLAG}']").click()
                    audit = page.locator("#audit tbody tr", has_text=f"admin:{OPERATOR}").filter(has_text="killed v")
                    await expect(audit.first).to_contain_text("e2e console test")  # who, what, why (before -> after:
                    # asserted in tests/integration/console; here another test's change may land in between)
                    await page.click("#definition button[data-action=enable]")
                    await expect(page.locator("#flag-state")).to_have_text("On")
                    await until_status(http, LEADERBOARD, 200, timeout=3.0)
                    await _shot(page, "flag")
                    print(f"\nconsole kill: the row said Killed {swapped * 1000:.0f} ms and the demo served gamification off "
                          f"{off_after * 1000:.0f} ms after the click")
                    assert off_after < 2.0  # a click, htmx, the console, the flags service, the demo's SDK stream
                finally:
                    await browser.close()
        finally:
            await _restore_flag(http, found, auth)
