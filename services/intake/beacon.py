"""A browser's page-load beacon (the web-vitals snippet in docs/intake.md) -> `PageLoadObserved`."""

from __future__ import annotations

import json
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from shared.events import PageLoadObserved

__all__ = ["Beacon", "BeaconError", "parse_beacon"]


class BeaconError(Exception):
    """A beacon refused: `status` is the HTTP answer (400 not JSON, 422 a field out of range)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Beacon(BaseModel):
    """The body: `service` and `page` name what loaded; timings in ms (`load_ms` or `lcp_ms` at least).

    Unknown fields (web-vitals' `rating`, `navigationType`, ...) are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    service: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    page: str = Field(min_length=1, max_length=512)
    load_ms: float | None = Field(default=None, ge=0, description="Navigation start to the load event's end.")
    lcp_ms: float | None = Field(default=None, ge=0, description="Largest Contentful Paint.")
    ttfb_ms: float | None = Field(default=None, ge=0)
    fcp_ms: float | None = Field(default=None, ge=0)
    dom_content_loaded_ms: float | None = Field(default=None, ge=0)

    @field_validator("load_ms", "lcp_ms", "ttfb_ms", "fcp_ms", "dom_content_loaded_ms")
    @classmethod
    def _at_most(cls, value: float | None, info: ValidationInfo) -> float | None:
        cap = (info.context or {}).get("max_ms", float("inf"))
        if value is not None and value > cap:
            raise ValueError(f"{value} ms is above the {cap:g} ms this intake takes")
        return value

    @field_validator("page")
    @classmethod
    def _path_only(cls, page: str) -> str:
        """A full URL keeps only its path: a query string can hold tokens, a fragment is no page."""
        path = urlsplit(page).path if "://" in page else page.split("?", 1)[0].split("#", 1)[0]
        if not path.startswith("/"):
            raise ValueError("page must be a path starting with '/' (or a URL)")
        return path

    @model_validator(mode="after")
    def _has_a_load_time(self) -> Self:
        if self.load_ms is None and self.lcp_ms is None:
            raise ValueError("send load_ms or lcp_ms (or both)")
        return self

    def event(self) -> PageLoadObserved:
        """`load_ms` is the page's load time when sent, else its LCP."""
        load = self.load_ms if self.load_ms is not None else self.lcp_ms
        assert load is not None  # _has_a_load_time
        return PageLoadObserved(service=self.service, page=self.page, load_ms=load, ttfb_ms=self.ttfb_ms,
                                dom_content_loaded_ms=self.dom_content_loaded_ms, lcp_ms=self.lcp_ms)


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_beacon(raw: bytes, *, max_ms: float) -> Beacon:
    """BeaconError 400 when `raw` is not a JSON object, 422 naming each bad field."""
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BeaconError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BeaconError(400, f"the body must be a JSON object, not {type(data).__name__}")
    try:
        return Beacon.model_validate(data, context={"max_ms": max_ms})
    except ValidationError as exc:
        raise BeaconError(422, _explain(exc)) from None
