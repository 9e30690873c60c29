"""Preflight's flag lines: a new flag serves its off variant to everyone, and it turns on and off for one
probe user against a running instance, after which its exact previous definition is put back.

Changes go through the flags API (the front door, admin token) as actor `safeguard-preflight`, so each
one is in the flag's audit log with its before and after.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import httpx

from deploy.app import FlagProbe

__all__ = ["ACTOR", "FlagsApi", "FlagsApiError", "ProbeFailed", "StackUnreachable", "get_patiently", "restore",
           "serves_on", "toggle"]

ACTOR = "safeguard-preflight"  # X-Safeguard-Actor allows [A-Za-z0-9_.@:-]: the audit reads admin:safeguard-preflight
_GATEWAY_DOWN = {502, 503, 504}
_VOLATILE = {"version", "updatedAt"}  # what any write changes; everything else must come back as it was


class StackUnreachable(RuntimeError):
    """The front door (or the flags service behind it) does not answer."""


class FlagsApiError(RuntimeError):
    """The flags API refused a request; the message has its status and detail."""


class ProbeFailed(RuntimeError):
    """The app did not answer as expected, or the flag could not be put back."""


class FlagsApi:
    """`/api/flags` through the front door with the admin token."""

    def __init__(self, *, url: str, token: str | None, http: httpx.AsyncClient) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._http = http

    async def get(self, key: str) -> dict[str, Any] | None:
        """The flag as `GET /api/flags/{key}` shows it; None if there is no such flag."""
        return await self._call("GET", f"/api/flags/{quote(key, safe='')}", None, missing_ok=True)

    async def patch(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("PATCH", f"/api/flags/{quote(key, safe='')}", body)  # type: ignore[return-value]

    async def post(self, key: str, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", f"/api/flags/{quote(key, safe='')}/{verb}", body)  # type: ignore[return-value]

    async def _call(self, method: str, path: str, body: dict[str, Any] | None, *,
                    missing_ok: bool = False) -> dict[str, Any] | None:
        if not self._token:
            raise FlagsApiError("no admin token: set SAFEGUARD_ADMIN_TOKEN or run `make up` (.stack/admin-token)")
        headers = {"Authorization": f"Bearer {self._token}", "X-Safeguard-Actor": ACTOR}
        try:
            resp = await self._http.request(method, self.url + path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise StackUnreachable(f"{self.url} does not answer ({type(exc).__name__})") from None
        if resp.status_code in _GATEWAY_DOWN:
            raise StackUnreachable(f"{method} {path}: HTTP {resp.status_code} from {self.url}")
        if resp.status_code == 404 and missing_ok:
            return None
        if resp.status_code >= 400:
            raise FlagsApiError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:300]}")
        result: dict[str, Any] = resp.json()
        return result


def _strings(node: Any) -> set[str]:
    if isinstance(node, str):
        return {node}
    if isinstance(node, dict):
        return set().union(*(_strings(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_strings(v) for v in node)) if node else set()
    return set()


def serves_on(flag: dict[str, Any]) -> str | None:
    """Why `flag` may serve something other than its off variant to someone by default; None if it cannot."""
    off = flag.get("offVariant")
    if off is None:
        return "it has no off variant, so nothing can turn it off"
    if flag["state"] == "DISABLED":
        return None
    if flag.get("rolloutPercent"):
        return f"it is ENABLED and rolled out to {flag['rolloutPercent']:g} %"
    if flag.get("defaultVariant") != off:
        return f"it is ENABLED and its defaultVariant is {flag.get('defaultVariant')!r}, not the off variant {off!r}"
    ons = sorted(_strings(flag.get("targeting")) & (set(flag["variants"]) - {off}))
    if ons:
        return f"it is ENABLED and its targeting can serve {', '.join(map(repr, ons))}"
    return None


def _variants(flag: dict[str, Any]) -> tuple[str, str]:
    off = flag.get("offVariant")
    if off is None:
        raise ProbeFailed(f"{flag['key']} has no off variant")
    others = [k for k in flag["variants"] if k != off]
    ons = [k for k in others if flag["variants"][k] is True] or others
    if not ons:
        raise ProbeFailed(f"{flag['key']} has no on variant (variants: {sorted(flag['variants'])})")
    return ("on" if "on" in ons else ons[0]), off


def _everyone_else(flag: dict[str, Any], off: str) -> Any:
    """What the flag serves everyone now, as a JsonLogic branch: the probe leaves them exactly there."""
    if flag["state"] == "DISABLED":
        return off
    return flag.get("targeting") or flag.get("defaultVariant")


def _only_for(user: str, variant: str, others: Any) -> dict[str, Any]:
    branches: list[Any] = [{"==": [{"var": "targetingKey"}, user]}, variant]
    if others is not None:
        branches.append(others)
    return {"if": branches}


async def get_patiently(http: httpx.AsyncClient, url: str, *, within_s: float = 5.0) -> httpx.Response:
    """GET `url`; a 429 is waited out as its Retry-After says while `within_s` lasts (a busy app is not a
    broken one). The last answer is returned, a 429 too once the time is up."""
    deadline = time.monotonic() + within_s
    while True:
        resp = await http.get(url)
        left = deadline - time.monotonic()
        if resp.status_code != 429 or left <= 0:
            return resp
        try:
            wait = float(resp.headers.get("Retry-After", "1"))
        except ValueError:
            wait = 1.0
        await asyncio.sleep(min(max(wait, 0.05), left))


async def _answer(http: httpx.AsyncClient, url: str, *, expect: int, timeout_s: float) -> tuple[int | None, str]:
    """GET `url` until it answers `expect` (the app sees a flag change within its SDK's delay) or time is up."""
    deadline = time.monotonic() + timeout_s
    status, text = None, ""
    while True:
        try:
            resp = await get_patiently(http, url, within_s=max(deadline - time.monotonic(), 0))
            status, text = resp.status_code, resp.text[:120]
        except httpx.HTTPError as exc:
            status, text = None, f"does not answer ({type(exc).__name__})"
        if status == expect or time.monotonic() > deadline:
            return status, text
        await asyncio.sleep(0.1)


async def _expect(http: httpx.AsyncClient, url: str, *, phase: str, expect: int, timeout_s: float) -> float:
    start = time.monotonic()
    status, text = await _answer(http, url, expect=expect, timeout_s=timeout_s)
    if status != expect:
        got = f"HTTP {status} {text!r}" if status is not None else text
        raise ProbeFailed(f"{phase}: {url} answered {got}, expected {expect} (waited {timeout_s:g} s)")
    return time.monotonic() - start


async def toggle(*, api: FlagsApi, http: httpx.AsyncClient, probe: FlagProbe, user: str, target: str,
                 timeout_s: float) -> str:
    """On for `user` only -> `probe.on`; off for `user` -> `probe.off`; then the previous definition, checked.
    Raises ProbeFailed with what the app answered, or FlagsApiError / StackUnreachable."""
    before = await api.get(probe.flag)
    if before is None:
        raise ProbeFailed(f"{probe.flag} does not exist")
    on, off = _variants(before)
    others = _everyone_else(before, off)
    url = target.rstrip("/") + probe.path.replace("{user}", quote(user, safe=""))
    reason = f"safeguard preflight: probe {probe.flag} for {user} only"
    failure: BaseException | None = None
    written = [before["version"]]  # the version of our last write: anything else is someone else's change
    try:
        changed = await api.patch(probe.flag, {"state": "ENABLED", "targeting": _only_for(user, on, others),
                                               "reason": reason})
        written.append(changed["version"])
        on_s = await _expect(http, url, phase="on", expect=probe.on, timeout_s=timeout_s)
        changed = await api.patch(probe.flag, {"targeting": _only_for(user, off, others), "reason": reason})
        written.append(changed["version"])
        off_s = await _expect(http, url, phase="off", expect=probe.off, timeout_s=timeout_s)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        try:
            await restore(api=api, before=before, ours=written[-1])
        except Exception as exc:
            # the app's answer matters less than a flag left changed: that is what the line reports
            raise ProbeFailed(f"{probe.flag} NOT restored ({exc}); "
                              f"{'after: ' + str(failure) if failure else 'probe passed'}") from exc
    return (f"{probe.flag}: on -> {probe.on} in {on_s:.2f} s, off -> {probe.off} in {off_s:.2f} s for "
            f"{user} at {target}; restored (version {before['version']} definition)")


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
            if k not in _VOLATILE and before.get(k) != after.get(k)}


async def restore(*, api: FlagsApi, before: dict[str, Any], ours: int | None = None) -> None:
    """Put back `before` (as GET showed it) and check GET shows the same again, all but version/updatedAt.
    `ours`: the version of our last write; a flag someone else changed since is left as they set it."""
    key = before["key"]
    now = await api.get(key)
    if now is None:
        raise ProbeFailed(f"{key} was deleted during the probe")
    if not _diff(before, now):
        return
    if ours is not None and now["version"] != ours:
        raise ProbeFailed(f"{key} was changed by someone else during the probe (version {now['version']}, "
                          f"ours {ours}): left as they set it, not restored")
    reason = "safeguard preflight: restore the definition before the probe"
    rollout = before.get("rolloutPercent")
    await api.patch(key, {"state": before["state"], "defaultVariant": before["defaultVariant"],
                          "targeting": None if rollout is not None else before.get("targeting"), "reason": reason})
    if rollout is not None:  # a rollout is re-made by the rollout call, which also sets state ENABLED
        await api.post(key, "rollout", {"percent": rollout, "reason": reason})
        if before["state"] == "DISABLED" and not before.get("killed"):
            await api.post(key, "disable", {"reason": reason})
    if before.get("killed"):
        await api.post(key, "kill", {"reason": reason})
    after = await api.get(key)
    if after is None:
        raise ProbeFailed(f"{key} is gone")
    if diff := _diff(before, after):
        raise ProbeFailed(f"{key} differs from before the probe (field: before, after): {diff}")
