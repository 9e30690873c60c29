"""`/console/login` and `/console/logout`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.console.auth import COOKIE, SessionKeeper
from services.console.templating import render

__all__ = ["router"]

router = APIRouter()


def _safe_next(target: str) -> str:
    """Only a path of the console itself (no open redirect)."""
    return target if target.startswith("/console") and "//" not in target and "\\" not in target else "/console"


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/console") -> HTMLResponse:
    return render(request, "login.html", page="login", session=None, next=_safe_next(next), error="")


@router.post("/login")
async def login(request: Request, token: Annotated[str, Form()], name: Annotated[str, Form()] = "",
                next: Annotated[str, Form()] = "/console") -> Response:
    keeper: SessionKeeper = request.app.state.sessions
    signed = keeper.sign_in(token=token.strip(), name=name.strip())
    if signed is None:
        return render(request, "login.html", status_code=401, page="login", session=None, next=_safe_next(next),
                      error="That is not the admin token." if keeper.enabled
                      else "No admin token is configured (SAFEGUARD_ADMIN_TOKEN): sign-in is off.")
    _, cookie = signed
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=keeper.max_age_s, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/console")
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/console", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response
