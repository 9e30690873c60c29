"""No route of ours runs in FastAPI's threadpool (issue 12).

FastAPI calls a plain `def` endpoint or dependency in a worker thread: each request hops to the thread and back,
and waits there for the GIL. flags' `Svc` dependency was such a `def` (it only read `request.app.state.flags`),
so every management call, the kill among them, paid that hop. `shared.http.state` is the async way to read what
`expose` kept; this walks every FastAPI app we serve and names what would still run in the threadpool."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from shared.http import state

APPS = [  # (module with create_app, module with the settings, settings class)
    ("services.flags.app", "services.flags.settings", "FlagsSettings"),
    ("services.health.app", "services.health.settings", "HealthSettings"),
    ("services.recovery.app", "services.recovery.settings", "RecoverySettings"),
    ("services.notifier.app", "services.notifier.settings", "NotifierSettings"),
    ("services.intake.app", "services.intake.settings", "IntakeSettings"),
    ("services.console.app", "services.console.settings", "ConsoleSettings"),
    ("examples.demo.app", "examples.demo.settings", "DemoSettings"),
]


def _is_async(call: Callable[..., Any]) -> bool:
    for c in (call, getattr(call, "__call__", None)):
        if inspect.iscoroutinefunction(c) or inspect.isasyncgenfunction(c):
            return True
    return False


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if hasattr(route, "original_router"):  # an included router
            yield from _routes(route.original_router.routes)
        elif isinstance(route, APIRoute):
            yield route


def _sync(dependant: Dependant) -> Iterator[str]:
    if dependant.call is not None and not _is_async(dependant.call):
        yield getattr(dependant.call, "__qualname__", repr(dependant.call))
    for sub in dependant.dependencies:
        yield from _sync(sub)


def in_threadpool(app: FastAPI) -> set[str]:
    """`METHOD path: callable` for every endpoint or dependency FastAPI would call in its threadpool."""
    return {f"{','.join(sorted(r.methods or ()))} {r.path}: {name}"
            for r in _routes(app.routes) for name in _sync(r.dependant)}


def test_the_walk_sees_a_plain_def_dependency_and_passes_state() -> None:
    app = FastAPI()

    def plain(x: int = 0) -> int:
        return x

    @app.get("/a")
    async def a(_: int = Depends(plain)) -> None: ...

    @app.get("/b")
    def b() -> None: ...

    @app.get("/c")
    async def c(_: object = state("flags")) -> None: ...

    assert in_threadpool(app) == {"GET /a: test_the_walk_sees_a_plain_def_dependency_and_passes_state.<locals>.plain",
                                  "GET /b: test_the_walk_sees_a_plain_def_dependency_and_passes_state.<locals>.b"}


@pytest.mark.parametrize(("app_module", "settings_module", "settings_class"), APPS, ids=[a[0] for a in APPS])
def test_no_route_runs_in_the_threadpool(app_module: str, settings_module: str, settings_class: str) -> None:
    settings = getattr(importlib.import_module(settings_module), settings_class)()
    app = importlib.import_module(app_module).create_app(settings)
    assert list(_routes(app.routes)), "the walk found no route"
    assert in_threadpool(app) == set()
