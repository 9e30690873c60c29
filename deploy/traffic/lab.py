"""A private HAProxy in front of two colour backends on free loopback ports, and a client loop.

For tests/integration/deploy/test_traffic_haproxy.py and bench/deploy_switch.py. HAProxy runs the
real stack/haproxy.cfg.in (its `backend demo` is what they exercise), rendered with private ports
and admin socket; the other front-door backends point at a closed port and stay DOWN. Each colour
is its own process (`python -m deploy.traffic.lab COLOUR PORT`) answering its colour to any path.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deploy.app import ROOT, AppSpec, Colour

__all__ = ["Backend", "ClientLoop", "Lab", "PrivateHaproxy", "Sample", "free_port"]

TEMPLATE = ROOT / "stack" / "haproxy.cfg.in"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} does not answer 200 after {timeout}s")


class Backend:
    """One colour's process on its own port."""

    def __init__(self, colour: str) -> None:
        self.colour = colour
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "deploy.traffic.lab", self.colour, str(self.port)],
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(f"{self.url}/healthz", timeout=20)

    def kill(self) -> None:
        """SIGKILL: gone at once, connections refused from now on."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None


class PrivateHaproxy:
    """HAProxy on stack/haproxy.cfg.in with private ports; `reload` starts a new one with -sf."""

    def __init__(self, workdir: Path, *, blue: Backend, green: Backend) -> None:
        self.workdir = workdir
        self.socket = str(workdir / "admin.sock")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        closed = f"127.0.0.1:{free_port()}"
        self.values = {
            "HAPROXY_SOCK": self.socket, "HAPROXY_RESOLVERS": "", "HAPROXY_SERVER_OPTS": "",
            "HAPROXY_STATE": str(workdir / "server-state"),
            "FRONT_BIND": f"127.0.0.1:{free_port()}", "DEMO_BIND": f"127.0.0.1:{self.port}",
            "FLAGS_ADDR": closed, "HEALTH_ADDR": closed, "SLA_ADDR": closed, "RECOVERY_ADDR": closed,
            "NOTIFIER_ADDR": closed, "DEMO_BLUE_ADDR": f"127.0.0.1:{blue.port}",
            "DEMO_GREEN_ADDR": f"127.0.0.1:{green.port}",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.retired: list[subprocess.Popen[bytes]] = []
        self.generation = 0

    def config(self, *, weights: dict[str, int] | None = None) -> str:
        """The rendered template; `weights` rewrites the demo servers' weights (the reload way)."""
        text = TEMPLATE.read_text()
        for key in sorted(set(re.findall(r"@([A-Z_][A-Z0-9_]*)@", text))):
            if key not in self.values and key.endswith(("_ADDR", "_BIND")):  # other apps' servers and fronts
                self.values[key] = f"127.0.0.1:{free_port()}"
            if key not in self.values and key.endswith("_PORT"):  # their check ports
                self.values[key] = str(free_port())
            if key not in self.values:
                raise RuntimeError(f"{TEMPLATE} uses @{key}@, which the lab does not set")
            text = text.replace(f"@{key}@", self.values[key])
        for colour, weight in (weights or {}).items():
            # the first backend with blue/green servers is the demo's (the Node demo's comes after it)
            text, n = re.subn(rf"(?m)^(\s+server {colour} \S+ .*\bweight )\d+", rf"\g<1>{weight}", text, count=1)
            if n == 0:
                raise RuntimeError(f"no `server {colour} ... weight N` line in {TEMPLATE}")
        return text

    def _launch(self, config: str, *extra: str) -> subprocess.Popen[bytes]:
        self.generation += 1
        path = self.workdir / f"haproxy.{self.generation}.cfg"
        path.write_text(config)
        check = subprocess.run([HAPROXY, "-c", "-q", "-f", str(path)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c {path}: {check.stdout}{check.stderr}")
        log = (self.workdir / f"haproxy.{self.generation}.log").open("wb")
        return subprocess.Popen([HAPROXY, "-db", "-f", str(path), *extra], stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.proc = self._launch(self.config())
        _wait_http(f"{self.url}/healthz", timeout=10)

    def reload(self, config: str, *, transfer: bool = False) -> subprocess.Popen[bytes]:
        """The classic reload: a new process takes the ports, the old one (-sf) finishes and exits.
        `transfer` adds `-x <admin socket>`: the listening sockets are handed over, not re-bound."""
        assert self.proc is not None, "start() first"
        old = self.proc
        extra = ["-x", self.socket] if transfer else []
        self.proc = self._launch(config, *extra, "-sf", str(old.pid))
        self.retired.append(old)
        return old

    def stop(self) -> None:
        for proc in [p for p in (self.proc, *self.retired) if p is not None]:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.proc, self.retired = None, []


class Lab:
    """`with Lab() as lab:` blue and green backends, HAProxy in front (blue 100, green 0)."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="sg-traffic-"))
        self.backends = {c: Backend(c) for c in ("blue", "green")}
        self.haproxy = PrivateHaproxy(self.workdir, blue=self.backends["blue"], green=self.backends["green"])

    def __enter__(self) -> Lab:
        try:
            for backend in self.backends.values():
                backend.start()
            self.haproxy.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.haproxy.stop()
        for backend in self.backends.values():
            backend.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def url(self) -> str:
        return self.haproxy.url

    def spec(self, **traffic: Any) -> AppSpec:
        """The demo's description pointed at this lab; `traffic` overrides [traffic] keys."""
        return AppSpec(
            name="demo", source=self.workdir / "safeguard.toml", schema="demo", migrations=self.workdir,
            url=self.url, colours={c: Colour(name=c, url=b.url, program=f"demo-{c}") for c, b in self.backends.items()},
            traffic={"kind": "haproxy", "backend": "demo", "socket": self.haproxy.socket, **traffic},
        )


@dataclass(frozen=True, kw_only=True)
class Sample:
    sent: float
    done: float
    colour: str | None
    error: str | None = None


@dataclass(kw_only=True)
class ClientLoop:
    """`keepalive` clients reusing one connection each and `fresh` clients opening one per request,
    each sending GETs back to back until stopped; every answer is a Sample (perf_counter times)."""

    url: str
    keepalive: int = 4
    fresh: int = 2
    samples: list[Sample] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def __aenter__(self) -> ClientLoop:
        self._tasks = [asyncio.create_task(self._client(close=i >= self.keepalive))
                       for i in range(self.keepalive + self.fresh)]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _client(self, *, close: bool) -> None:
        headers = {"connection": "close"} if close else {}
        async with httpx.AsyncClient(base_url=self.url, timeout=10, headers=headers) as client:
            while not self._stop.is_set():
                sent = time.perf_counter()
                try:
                    response = await client.get("/who")
                except httpx.HTTPError as exc:
                    self.samples.append(Sample(sent=sent, done=time.perf_counter(), colour=None, error=repr(exc)))
                    continue
                ok = response.status_code == 200
                self.samples.append(Sample(sent=sent, done=time.perf_counter(), colour=response.text if ok else None,
                                           error=None if ok else f"HTTP {response.status_code}"))

    def failures(self, since: float = 0.0, until: float = float("inf")) -> list[Sample]:
        return [s for s in self.samples if s.error and since <= s.sent <= until]

    def answered(self, since: float = 0.0, until: float = float("inf")) -> list[Sample]:
        """The answers to requests wholly inside [since, until]: sent at or after `since`, answered by `until`.
        A request still in flight at `until` is left out: the client's send time is not when HAProxy picked a
        server, so under load it may have been routed after a weight change made at `until`. By send time."""
        return sorted((s for s in self.samples if s.colour and since <= s.sent and s.done <= until),
                      key=lambda s: s.sent)

    def colours(self, since: float = 0.0, until: float = float("inf")) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.answered(since, until):
            counts[str(s.colour)] = counts.get(str(s.colour), 0) + 1
        return counts

    async def wait_for(self, n: int) -> None:
        """Until `n` more answers arrived."""
        target = len(self.samples) + n
        while len(self.samples) < target:
            await asyncio.sleep(0.005)


def serve(colour: str, port: int) -> None:
    """A colour backend: 200 and the colour's name on every path."""
    import uvicorn

    body = colour.encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
