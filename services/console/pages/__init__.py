"""One module per page; each exports `router` (mounted under /console). Add a page: a module here
and its name in ROUTERS."""

from fastapi import APIRouter

from services.console.pages import home

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [home.router]
