"""The console's Jinja2 environment: autoescaped, strict, with the human-number filters every page uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["templates", "render", "percent", "millis"]

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def percent(value: float | None, digits: int = 1) -> str:
    """0.156997 -> "15.7 %" (the runbook's thresholds are read as percentages)."""
    return "-" if value is None else f"{value * 100:.{digits}f} %"


def millis(value: float | None) -> str:
    """1234.5 -> "1.23 s", 12.3 -> "12 ms"."""
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


templates.env.filters.update(percent=percent, millis=millis)
templates.env.undefined = StrictUndefined


def render(request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)
