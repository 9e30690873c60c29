"""`/console`: the landing page (the overview replaces it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse

from services.console.auth import Session, viewer
from services.console.templating import render

__all__ = ["router"]

router = APIRouter()


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request, session: Annotated[Session | None, Depends(viewer)]) -> HTMLResponse:
    return render(request, "home.html", page="overview", session=session)
