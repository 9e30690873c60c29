"""The flag client a protected app uses: bootstrap once, evaluate locally, follow changes live.

    async with FlagClient("http://127.0.0.1:3000", api_key=...) as flags:
        if flags.get_boolean("gamification", False, {"targetingKey": user_id}):
            ...

- Bootstrap: `GET /api/flags/_snapshot`; if the service is down, the last snapshot saved at
  `cache_path` (if any); otherwise start empty and keep trying (evaluations answer the code default).
- Live: `GET /api/flags/_stream` (server-sent events): a `snapshot` event on every (re)connect, then
  one `flag` event per change. Reconnects with backoff; the last known flags keep serving meanwhile.
- Evaluation never touches the network: the same compiled evaluator as the service (flagd semantics,
  kill policy: a killed flag serves its off variant whatever default the code passes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx

from sdk.flags.exposure import ExposureBuffer, ExposureReporter
from sdk.flags.provider import SafeguardProvider
from shared.flags.evaluator import CODE_DEFAULT, CompiledFlag, FlagSpec, Resolution, compile_flag, evaluate

__all__ = ["FlagClient"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
_NOT_FOUND = Resolution(None, None, "ERROR", "FLAG_NOT_FOUND", "flag not found")
_TYPES: dict[type, tuple[type, ...]] = {bool: (bool,), str: (str,), int: (int,), float: (int, float),
                                        dict: (dict, list)}


class FlagClient:
    def __init__(self, base_url: str, *, api_key: str | None = None, cache_path: str | Path | None = None,
                 timeout_s: float = 5.0, max_backoff_s: float = 5.0, idle_timeout_s: float = 45.0,
                 transport: httpx.AsyncBaseTransport | None = None, report_exposures: bool = True,
                 exposure_interval_s: float = 10.0) -> None:
        """`report_exposures`: post which (hashed) targeting keys saw which flag every `exposure_interval_s`
        (sdk/flags/exposure.py), so the console can say how many users a rollout reaches.
        `idle_timeout_s`: a stream silent this long is dead (the service sends a keep-alive every 15 s; an
        instance that hangs keeps its socket open) and is opened again."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.idle_timeout_s = idle_timeout_s
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, transport=transport,
                                       timeout=httpx.Timeout(timeout_s, read=idle_timeout_s))
        self._flags: dict[str, CompiledFlag] = {}
        self._versions: dict[str, int] = {}
        self._raw: dict[str, Any] = {}
        self.revision = 0
        self.connected = False
        self.last_update: float | None = None
        self._cache_path = Path(cache_path) if cache_path else None
        self._max_backoff = max_backoff_s
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[str, CompiledFlag | None], None]] = []
        self._first = asyncio.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.exposures = ExposureReporter(ExposureBuffer(), interval_s=exposure_interval_s) if report_exposures else None
        self._reporting: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self, *, wait_s: float = 3.0) -> FlagClient:
        """Begin following the service; return once flags are known (or after `wait_s`, from the file cache)."""
        self._load_file()
        self._task = asyncio.create_task(self._follow(), name="safeguard-flags-follow")
        if self.exposures is not None:
            self._reporting = asyncio.create_task(self.exposures.run(self._http), name="safeguard-flags-exposures")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), wait_s)
        return self

    async def stop(self) -> None:
        for task in (self._task, self._reporting):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._http.aclose()

    async def __aenter__(self) -> FlagClient:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_background(self, *, wait_s: float = 3.0) -> FlagClient:
        """For synchronous apps: run the follower in a daemon thread with its own event loop."""
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._first = asyncio.Event()
            self._loop.run_until_complete(self.start(wait_s=wait_s))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="safeguard-flags", daemon=True)
        self._thread.start()
        ready.wait(wait_s + 5)
        return self

    def stop_background(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    def on_change(self, listener: Callable[[str, CompiledFlag | None], None]) -> None:
        """`listener(key, flag_or_None)` after each change is applied (on the client's loop)."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ evaluation (local only)
    def evaluate(self, key: str, context: Mapping[str, Any] | None = None) -> Resolution:
        flag = self._flags.get(key)
        if flag is None:
            return _NOT_FOUND
        r = evaluate(flag, context)
        if self.exposures is not None:
            self.exposures.buffer.saw(flag, context, r)
        return r

    def _value(self, key: str, default: T, context: Mapping[str, Any] | None, kind: type) -> T:
        flag = self._flags.get(key)  # self.evaluate inlined: this is every call's path
        if flag is None:
            return default
        r = flag.static or evaluate(flag, context)
        if self.exposures is not None:
            self.exposures.buffer.saw(flag, context, r)
        if r.error_code is not None or r.value is CODE_DEFAULT:
            return default
        v: Any = r.value
        if not isinstance(v, _TYPES[kind]) or (kind is not bool and isinstance(v, bool)):
            return default
        return cast(T, float(cast(float, v)) if kind is float else v)

    def get_boolean(self, key: str, default: bool, context: Mapping[str, Any] | None = None) -> bool:
        flag = self._flags.get(key)  # _value for a bool, unrolled: the SDK's most frequent call
        if flag is None:
            return default
        r = flag.static or evaluate(flag, context)
        if self.exposures is not None:
            self.exposures.buffer.saw(flag, context, r)
        v = r.value
        return v if type(v) is bool and r.error_code is None else default

    def get_string(self, key: str, default: str, context: Mapping[str, Any] | None = None) -> str:
        return self._value(key, default, context, str)

    def get_integer(self, key: str, default: int, context: Mapping[str, Any] | None = None) -> int:
        return self._value(key, default, context, int)

    def get_float(self, key: str, default: float, context: Mapping[str, Any] | None = None) -> float:
        return self._value(key, default, context, float)

    def get_object(self, key: str, default: Any, context: Mapping[str, Any] | None = None) -> Any:
        return self._value(key, default, context, dict)

    def keys(self) -> list[str]:
        return sorted(self._flags)

    def provider(self) -> SafeguardProvider:
        """An OpenFeature provider over this client (`api.set_provider(client.provider())`)."""
        return SafeguardProvider(self)

    # ------------------------------------------------------------------ following the service
    async def _follow(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with self._http.stream("GET", "/api/flags/_stream",
                                             headers={"Accept": "text/event-stream"}) as resp:
                    resp.raise_for_status()
                    self.connected = True
                    backoff = 0.1
                    await self._read(resp)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving the last flags; retry
                if self.connected or backoff == 0.1:
                    logger.warning("flag stream lost; serving the last known flags", extra={"error": repr(exc)})
            self.connected = False
            await asyncio.sleep(backoff)
            backoff = min(self._max_backoff, backoff * 2)

    async def _read(self, resp: httpx.Response) -> None:
        event, data = "message", list[str]()
        async for line in resp.aiter_lines():
            if line == "":
                if data:
                    self._handle(event, json.loads("\n".join(data)))
                event, data = "message", list[str]()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())

    def _handle(self, event: str, payload: dict[str, Any]) -> None:
        if event == "snapshot":
            flags = payload["flags"]
            if not self._accepts(payload):
                self._first.set()
                return
            for gone in set(self._flags) - set(flags):
                self._apply(gone, None)
            for key, view in flags.items():
                if self._versions.get(key) != view["version"]:
                    self._apply(key, view)
            self._raw = dict(flags)
            self.revision = payload["revision"]
            self._first.set()
            self._save_file()
        elif event == "flag":
            self._apply(payload["key"], payload["flag"])
            self.revision = max(self.revision, payload["revision"])
            self._save_file()
        self.last_update = time.monotonic()

    def _accepts(self, snapshot: dict[str, Any]) -> bool:
        """A snapshot may replace what we know only if it is loaded and not older than what we have.

        A flags instance that started while its stores were unreachable sends an empty revision-0
        snapshot; one restored from an older backup sends an older revision. Taking either would drop
        killed flags, so the calling code's default (often `True`) would come back on.
        """
        revision = snapshot.get("revision", 0)
        if snapshot.get("loaded") is False or revision < self.revision or (not snapshot["flags"] and self._flags
                                                                              and revision <= self.revision):
            logger.warning("ignoring a flag snapshot older than ours or not loaded; keeping the last known flags",
                           extra={"snapshot_revision": revision, "our_revision": self.revision,
                                  "flags": len(snapshot["flags"])})
            return False
        return True

    def _apply(self, key: str, view: dict[str, Any] | None) -> None:
        if view is None:
            self._flags.pop(key, None)
            self._versions.pop(key, None)
            self._raw.pop(key, None)
            compiled = None
        else:
            compiled = compile_flag(FlagSpec(key, view["definition"], view.get("offVariant")))
            self._flags[key] = compiled
            self._versions[key] = view["version"]
            self._raw[key] = view
        for listener in self._listeners:
            try:
                listener(key, compiled)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop updates
                logger.exception("flag change listener failed")

    # ------------------------------------------------------------------ last known flags on disk
    def _save_file(self) -> None:
        if self._cache_path is None:
            return
        body = json.dumps({"revision": self.revision, "flags": self._raw})
        fd, tmp = tempfile.mkstemp(dir=self._cache_path.parent, prefix=".flags-")
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        os.replace(tmp, self._cache_path)

    def _load_file(self) -> None:
        if self._cache_path is None or not self._cache_path.exists():
            return
        try:
            saved = json.loads(self._cache_path.read_text())
            for key, view in saved["flags"].items():
                self._apply(key, view)
            self.revision = saved.get("revision", 0)
        except (OSError, ValueError, KeyError):
            logger.warning("ignoring an unreadable flag cache file", exc_info=True)
