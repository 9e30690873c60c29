"""The steady load: app instances sending sequence-numbered telemetry through the SDK's own
`RequestRecorder`, SDK (`FlagClient`) evaluations, OFREP evaluations and demo-app traffic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chaos.observe import seq_id
from chaos.phase import Phase, Produced
from sdk.flags import FlagClient
from sdk.middleware import RequestRecorder
from shared.events import Event, RequestsObserved
from shared.kafka import KafkaPublisher, Publisher
from shared.settings import KafkaSettings

__all__ = ["Load", "FLAG"]

FLAG = "gamification"
log = logging.getLogger(__name__)
Current = Callable[[], Phase]


@dataclass
class SeqPublisher:
    """Gives each event of one instance the next sequence number (in its id) and books it."""

    inner: Publisher
    run: int
    instance: int
    book: dict[tuple[int, int], Produced]
    seq: int = 0

    async def publish(self, event: Event, *, topic: str | None = None) -> None:
        assert isinstance(event, RequestsObserved)
        self.seq += 1
        key = (self.instance, self.seq)
        produced = self.book[key] = Produced(service=event.service, count=event.count)
        try:
            await self.inner.publish(event.model_copy(update={"id": seq_id(run=self.run, instance=self.instance, seq=self.seq)}),
                                     topic=topic)
        except BaseException:
            produced.acked = False
            raise
        produced.acked = True


@dataclass
class Load:
    front: str
    demo: str
    bootstrap: str
    run: int
    current: Current
    instances: int = 4
    sdks: int = 3
    topic_prefix: str = ""
    demo_instances: dict[str, str] = field(default_factory=dict)  # name -> base URL of one demo process
    book: dict[tuple[int, int], Produced] = field(default_factory=dict)
    recorders: list[RequestRecorder] = field(default_factory=list)
    clients: dict[str, FlagClient] = field(default_factory=dict)
    cache_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="safeguard-chaos-")))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(shutil.rmtree, self.cache_dir, True)
            settings = KafkaSettings(bootstrap_servers=self.bootstrap, topic_prefix=self.topic_prefix,
                                     client_id="safeguard-chaos")
            for i in range(self.instances):
                pub = await stack.enter_async_context(KafkaPublisher.start(settings, source=f"/chaos/app-{i}"))
                rec = RequestRecorder(service=self.current().service, instance=f"chaos-{self.run:x}-app{i}")
                self.recorders.append(rec)
                await stack.enter_async_context(rec.running(SeqPublisher(pub, self.run, i, self.book)))
            for i in range(self.sdks):
                client = FlagClient(self.front, cache_path=self.cache_dir / f"sdk{i}.json")
                await stack.enter_async_context(client)
                self._watch(f"sdk{i}", client)
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=2.0))
            tasks = [self._traffic(), self._sdk_evals(), *(self._ofrep(http, i) for i in range(2)),
                     self._demo_items(http), *(self._demo_view(http, c, u) for c, u in self.demo_instances.items())]
            for coro in tasks:
                stack.enter_context(_task(coro))
            yield self

    def set_service(self, service: str) -> None:
        for rec in self.recorders:
            rec.service = service

    def pending(self, service: str) -> int:
        return sum(1 for p in list(self.book.values()) if p.service == service and p.acked is None)

    def _watch(self, name: str, client: FlagClient) -> None:
        self.clients[name] = client
        client.on_change(lambda key, _flag: self._sdk_eval(name, client) if key == FLAG else None)

    @contextlib.asynccontextmanager
    async def fresh_sdk(self) -> AsyncIterator[FlagClient]:
        """A FlagClient that starts now (an app restarting during the fault), from sdk0's saved flags."""
        path = self.cache_dir / f"fresh-{random.getrandbits(32):x}.json"
        with contextlib.suppress(OSError):
            shutil.copy(self.cache_dir / "sdk0.json", path)
        client = FlagClient(self.front, cache_path=path)
        self._watch("sdk-fresh", client)
        try:
            async with client:
                self._sdk_eval("sdk-fresh", client)
                yield client
        finally:
            self.clients.pop("sdk-fresh", None)

    # ---- generators --------------------------------------------------------------------
    async def _traffic(self) -> None:
        """50 requests a second into each instance's recorder (status 200, 5-80 ms)."""
        while True:
            for rec in self.recorders:
                for _ in range(5):
                    rec.record(200, random.uniform(5, 80))
            await asyncio.sleep(0.1)

    def _sdk_eval(self, name: str, client: FlagClient) -> None:
        phase = self.current()
        r = client.evaluate(FLAG, {"targetingKey": "chaos"})
        phase.evals["sdk"] += 1
        if r.error_code is not None or r.is_code_default:
            phase.fail("sdk_fail", f"{name}: {r.error_code} {r.error_message}")
            phase.served(name, None)
        else:
            phase.served(name, r.value)

    async def _sdk_evals(self) -> None:
        while True:
            for name, client in list(self.clients.items()):
                self._sdk_eval(name, client)
            await asyncio.sleep(0.1)

    async def _ofrep(self, http: httpx.AsyncClient, worker: int) -> None:
        url = f"{self.front}/ofrep/v1/evaluate/flags/{FLAG}"
        while True:
            phase = self.current()
            phase.evals["ofrep"] += 1
            try:
                r = await http.post(url, json={"context": {"targetingKey": f"chaos-{worker}"}})
            except httpx.HTTPError as exc:
                phase.fail("ofrep_fail", f"{type(exc).__name__}: {exc}")
            else:
                if r.status_code >= 500:
                    phase.fail("ofrep_fail", f"HTTP {r.status_code} {r.text[:80]}")
                elif r.status_code >= 400:
                    phase.evals["ofrep_4xx"] += 1
                else:
                    phase.served(f"ofrep{worker}", r.json().get("value"))
            await asyncio.sleep(0.1)

    async def _demo_items(self, http: httpx.AsyncClient) -> None:
        """App traffic that needs the database (what makes the demo notice Postgres is away)."""
        while True:
            phase = self.current()
            try:
                r = await http.get(f"{self.demo}/api/items")
                phase.evals[f"demo_{r.status_code // 100}xx"] += 1
            except httpx.HTTPError:
                phase.evals["demo_err"] += 1
            await asyncio.sleep(0.2)

    async def _demo_view(self, http: httpx.AsyncClient, name: str, base: str) -> None:
        """What each demo instance's own FlagClient serves (GET / says `gamification`)."""
        while True:
            phase = self.current()
            with contextlib.suppress(httpx.HTTPError, ValueError):
                r = await http.get(f"{base}/", params={"user": "chaos"})
                if r.status_code == 200:
                    phase.served(name, r.json().get("gamification"))
            await asyncio.sleep(0.25)


@contextlib.contextmanager
def _task(coro: Any) -> Any:
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        task.cancel()
