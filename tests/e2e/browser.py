"""Chromium for the e2e checks that a person could see: one path, one launch recipe."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["CHROMIUM", "chromium_page"]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@asynccontextmanager
async def chromium_page(*, width: int = 1280, height: int = 1000) -> AsyncIterator[Any]:
    """A fresh headless Chromium page (Playwright), closed afterwards; a missing browser fails, never skips."""
    from playwright.async_api import async_playwright

    assert os.path.exists(CHROMIUM), f"no {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield await browser.new_page(viewport={"width": width, "height": height})
        finally:
            await browser.close()
