"""One module per page; each exports `router` (mounted under /console). Add a page: a module here
and its name in ROUTERS."""

from fastapi import APIRouter

from services.console.pages import flags, overview, session
from services.console.pages import incidents, recovery, sla

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [session.router, overview.router, flags.router]
ROUTERS += [incidents.router, sla.router, recovery.router]
