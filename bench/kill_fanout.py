"""Kill -> the slowest of 1,000 SSE subscribers (issue 12), on the running stack, beside bare SSE endpoints.

Subscribers are held by lean reader processes (bench/_sse_reader.py: raw asyncio protocols, FANOUT_READERS
processes), so the figure measures the server rather than one Python client reading 1,000 sockets. Per kill,
the delay is from the kill call being sent to the moment the LAST subscriber has read the event. Measured in
one run, each with FANOUT_STREAMS (1,000) subscribers and FANOUT_KILLS kills:

1. baselines: a bare SSE endpoint broadcasting the same bytes (bench/_bare_sse.py), as a raw ASGI app on
   uvicorn (the flags service's server) and as plain asyncio writing to each transport (the floor);
2. flags :8001 alone (all subscribers on the instance the kill is sent to), and 1 subscriber (idle), the
   calls made with httpx and again as raw bytes on a kept-alive connection (`_RawCalls`: httpx's own ~2 ms
   before the bytes leave is not the system's);
3. flags :8001 and :8011, half each: the kill is sent to :8001 and reaches :8011 over Redis pub/sub;
4. with no Python anywhere (when Go is installed): bench/go/fanout, a Go server with the same bytes as the plain
   asyncio one, read by Go readers (1 process and FANOUT_READERS; the lower is kept): the machine's floor; and
   flags :8001 read by the Go reader, so the readers' cost is not Python's. The binary is built once a run,
   offline (stdlib only), into the temp dir (`.cache/` is not ignored by git).

Beside each: the kill call's answer, the first subscriber, first -> last (the fan-out itself), and the CPU time
per subscriber per event of the server(s) and of the readers (psutil, over the rounds; each round fans out the
enable and the kill). The CPU figure is the one to trust on a loaded machine: wall times swing with the load,
CPU per event hardly does (for :8001 it also holds the stack's other traffic during the rounds).

The flag is the bench's own (`bench-fanout-<pid>`, created with the admin token, deleted after). Streams are
opened without a token and with distinct X-Forwarded-For addresses (<= 50 each), so the stack's per-client cap
(64) holds; its total cap (1,024 per instance) leaves room for the stack's own few subscribers.

    python -m bench kill_fanout        # FANOUT_STREAMS=1000 FANOUT_KILLS=30 FANOUT_READERS=4 FANOUT_IDLE_KILLS=150
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from bench.report import record

__all__ = ["main"]

STREAMS = int(os.environ.get("FANOUT_STREAMS", "1000"))
KILLS = int(os.environ.get("FANOUT_KILLS", "30"))
IDLE_KILLS = int(os.environ.get("FANOUT_IDLE_KILLS", "150"))  # 1 subscriber: cheap, and a p99 of 30 is their max
READERS = int(os.environ.get("FANOUT_READERS", "4"))
FLAGS = os.environ.get("FANOUT_FLAGS_URL", "http://127.0.0.1:8001")
FLAGS_2 = os.environ.get("FANOUT_FLAGS_2_URL", "http://127.0.0.1:8011")
KEY = f"bench-fanout-{os.getpid()}"
GO_SRC = Path(__file__).resolve().parent / "go" / "fanout"
GO_BIN = Path(tempfile.gettempdir()) / "safeguard-bench" / "fanout"
Send = Callable[[], Awaitable[None]]


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Readers:
    """Reader processes holding streams; `wait(after)` gives the first revision above `after` that every stream
    has seen, with its first and last arrival (ns, CLOCK_REALTIME)."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []
        self.revs: dict[int, dict[int, tuple[int, int]]] = {}  # revision -> reader -> (first, last) arrival
        self.changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, port: int, n: int, *, procs: int, cmd: list[str] | None = None) -> None:
        """`procs` reader processes for `n` streams on `port`; `cmd`: the reader's argv before PORT N KEY TAG
        (the Python reader by default; `fanout read` is the Go one)."""
        cmd = cmd or [sys.executable, "-m", "bench._sse_reader"]
        for i in range(procs):
            share = n // procs + (i < n % procs)
            p = await asyncio.create_subprocess_exec(
                *cmd, str(port), str(share), KEY, str(len(self.procs) + 1),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            assert p.stdout is not None
            line = await asyncio.wait_for(p.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"reader on :{port} did not open its {share} streams")
            self.procs.append(p)
            self._tasks.append(asyncio.create_task(self._follow(len(self.procs) - 1, p)))

    async def _follow(self, idx: int, p: asyncio.subprocess.Process) -> None:
        assert p.stdout is not None
        async for line in p.stdout:
            rev, _count, first, last = (int(x) for x in line.split())
            self.revs.setdefault(rev, {})[idx] = (first, last)
            self.changed.set()

    async def wait(self, after: int, timeout: float = 10.0) -> tuple[int, int, int]:
        async with asyncio.timeout(timeout):
            while True:
                done = [r for r, by in self.revs.items() if r > after and len(by) == len(self.procs)]
                if done:
                    seen = self.revs[min(done)].values()
                    return min(done), min(f for f, _ in seen), max(last for _, last in seen)
                self.changed.clear()
                await self.changed.wait()

    async def close(self) -> None:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.close()
        for p in self.procs:
            try:
                await asyncio.wait_for(p.wait(), 10)
            except TimeoutError:
                p.kill()
        for t in self._tasks:
            t.cancel()


@dataclass(frozen=True, slots=True)
class Kills:
    """Per kill, ms from the call being sent: its answer, the first and the last subscriber to read it."""

    answer: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # the servers' CPU per subscriber per event (one item)
    reader_us: list[float] = field(default_factory=list)  # the readers' CPU per subscriber per event (one item)


async def _rounds(readers: Readers, *, prepare: Send, kill: Send, kills: int) -> Kills:
    """`kills` rounds: `prepare` (enable), seen by all; then `kill`, timed from the call to the last reader."""
    out = Kills()
    last = max(readers.revs, default=0)
    for _ in range(kills):
        await prepare()
        last = (await readers.wait(last))[0]
        await asyncio.sleep(0.15)
        t0 = time.time_ns()
        await kill()
        answered = time.time_ns()
        try:
            last, first_ns, last_ns = await readers.wait(last)
        except TimeoutError:
            out.missed.append(1)
            last = max(readers.revs, default=last)
            continue
        out.answer.append((answered - t0) / 1e6)
        out.first.append((first_ns - t0) / 1e6)
        out.last.append((last_ns - t0) / 1e6)
        await asyncio.sleep(0.15)
    return out


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@asynccontextmanager
async def _bare(mode: str, cmd: list[str] | None = None) -> AsyncIterator[tuple[int, Send]]:
    """A bare SSE server (`python -m bench._bare_sse MODE`, or `cmd` before PORT KEY: `fanout serve`)."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(*(cmd or [sys.executable, "-m", "bench._bare_sse", mode]),
                                                str(port), KEY)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            for _ in range(100):
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)

            async def send() -> None:
                (await c.post("/publish")).raise_for_status()

            yield port, send
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class _RawCalls:
    """The enable / kill calls as a curl would send them: request bytes built once, written on one kept-alive
    connection, the answer read by Content-Length. With httpx the clock also ran through ~2 ms of the client
    library's own Python before the bytes left (measured: 2.1 ms p50 from the call to the server's first line)."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.host, self.port = urlsplit(base).hostname or "127.0.0.1", _port(base)
        self.headers = headers
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._bytes: dict[str, bytes] = {}

    async def post(self, path: str) -> tuple[int, dict[str, str]]:
        if path not in self._bytes:
            body = b'{"reason":"bench"}'
            head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            self._bytes[path] = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{head}Content-Type: "
                                 f"application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        if self._conn is None:
            self._conn = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._conn
        writer.write(self._bytes[path])
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            writer.close()
            self._conn = None
        return int(status_line.split()[1]), headers

    def close(self) -> None:
        if self._conn is not None:
            self._conn[1].close()


@asynccontextmanager
async def _flag(*, raw: bool = False) -> AsyncIterator[tuple[Send, Send]]:
    """The bench's own flag on the stack; (enable, kill) calls to FLAGS, by httpx or as raw bytes (`_RawCalls`)."""
    headers = {"Authorization": f"Bearer {os.environ['SAFEGUARD_ADMIN_TOKEN']}", "X-Safeguard-Actor": "bench"}
    calls = _RawCalls(FLAGS, headers) if raw else None
    async with httpx.AsyncClient(base_url=FLAGS, headers=headers, timeout=30) as c:
        (await c.post("/api/flags", json={"key": KEY, "new": False, "description": "bench kill_fanout",
                                          "reason": "bench"})).raise_for_status()
        try:
            async def call(what: str) -> None:
                path = f"/api/flags/{KEY}/{what}"
                for _ in range(20):
                    if calls is not None:
                        status, got = await calls.post(path)
                    else:
                        r = await c.post(path, json={"reason": "bench"})
                        status, got = r.status_code, dict(r.headers)
                    if status != 429:  # the write limit is per client: others may be writing too
                        break
                    await asyncio.sleep(float(got.get("retry-after", "1")))
                if status >= 300:
                    raise RuntimeError(f"{what}: HTTP {status}")

            async def enable() -> None:
                await call("enable")

            async def kill() -> None:
                await call("kill")

            yield enable, kill
        finally:
            if calls is not None:
                calls.close()
            await c.delete(f"/api/flags/{KEY}", params={"reason": "bench done"})


def _server(port: int) -> psutil.Process:
    """The process listening on `port` (loopback)."""
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            return psutil.Process(c.pid)
    raise RuntimeError(f"no process listens on :{port}")


def _cpu(procs: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in procs)


async def _measure(targets: list[tuple[int, int]], prepare: Send, kill: Send, *, kills: int = KILLS,
                   reader: list[str] | None = None, procs: int | None = None) -> Kills:
    """Kill rounds with the subscribers of `targets` (port, streams); also the servers' CPU time per subscriber
    per event (each round fans out two events, the enable and the kill; the calls themselves are included).
    `reader`: the reader's command (`Readers.open`), `procs` its processes per target (by default READERS for
    STREAMS streams)."""
    readers = Readers()
    servers = [_server(port) for port, _ in targets]
    try:
        for port, n in targets:
            share = procs or max(1, min(READERS * n // max(STREAMS, 1), n))
            await readers.open(port, n, procs=min(share, n), cmd=reader)
        await asyncio.sleep(0.5)
        clients = [psutil.Process(p.pid) for p in readers.procs]
        cpu0, client0 = _cpu(servers), _cpu(clients)
        out = await _rounds(readers, prepare=prepare, kill=kill, kills=kills)
        events = 2 * kills * sum(n for _, n in targets)
        out.cpu_us.append((_cpu(servers) - cpu0) * 1e6 / events)
        out.reader_us.append((_cpu(clients) - client0) * 1e6 / events)
        return out
    finally:
        await readers.close()


async def _go_fanout() -> tuple[Path | None, str]:
    """bench/go/fanout built into GO_BIN (once a run, offline: stdlib only); (None, why) without Go."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if go is None:
        return None, "no `go` on PATH nor /usr/local/go/bin/go"
    GO_BIN.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local"}
    if "HOME" not in env and "GOCACHE" not in env:
        env["GOCACHE"] = str(GO_BIN.parent / "go-build")
    p = await asyncio.create_subprocess_exec(go, "build", "-o", str(GO_BIN), ".", cwd=GO_SRC, env=env,
                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await p.communicate()
    if p.returncode:
        return None, f"`go build` in {GO_SRC} failed: {out.decode(errors='replace').strip()[:300]}"
    return GO_BIN, ""


def _line(name: str, k: Kills) -> str:
    spread = [b - a for a, b in zip(k.first, k.last, strict=True)]
    return (f"  {name:<44} p50 {_pct(k.last, 50):7.2f}  p99 {_pct(k.last, 99):7.2f}  | answer p50 "
            f"{_pct(k.answer, 50):6.2f}  first p50 {_pct(k.first, 50):6.2f}  first->last p50 {_pct(spread, 50):6.2f}"
            f" p99 {_pct(spread, 99):6.2f}  CPU us/stream/event: server {k.cpu_us[0]:5.1f}, "
            f"readers {k.reader_us[0]:4.1f}  missed {len(k.missed)}")


async def main() -> None:
    a, b = _port(FLAGS), _port(FLAGS_2)
    print(f"kill -> slowest SSE subscriber: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, loopback; "
          f"{STREAMS:,} streams over {READERS} reader processes, {KILLS} kills each ({IDLE_KILLS} with 1 subscriber); "
          "ms from the call being sent")
    res: dict[str, Kills] = {}
    for mode in ("direct", "asgi"):
        async with _bare(mode) as (port, send):
            res[mode] = await _measure([(port, STREAMS)], send, send)
    go, go_skipped = await _go_fanout()
    go_tried = sorted({1, READERS})  # Go reader processes: the lower p99 is the floor
    if go is not None:
        for n in go_tried:
            async with _bare("go", [str(go), "serve"]) as (port, send):
                res[f"go_{n}"] = await _measure([(port, STREAMS)], send, send, reader=[str(go), "read"], procs=n)
    go_procs = min(go_tried, key=lambda n: _pct(res[f"go_{n}"].last, 99)) if go is not None else 1
    async with _flag() as (enable, kill):
        res["idle"] = await _measure([(a, 1)], enable, kill, kills=IDLE_KILLS)
        res["one"] = await _measure([(a, STREAMS)], enable, kill)
        res["two"] = await _measure([(a, STREAMS // 2), (b, STREAMS - STREAMS // 2)], enable, kill)
        if go is not None:
            res["one_go"] = await _measure([(a, STREAMS)], enable, kill, reader=[str(go), "read"], procs=go_procs)
    async with _flag(raw=True) as (enable, kill):
        res["idle_raw"] = await _measure([(a, 1)], enable, kill, kills=IDLE_KILLS)
    names = {"direct": "bare asyncio, bytes to each transport (floor)", "asgi": "bare ASGI on uvicorn",
             "idle": "flags :8001, 1 subscriber", "idle_raw": "flags :8001, 1 subscriber, raw client",
             "one": f"flags :8001, {STREAMS:,} subscribers",
             "two": f"flags :8001 + :8011, {STREAMS // 2:,} each"}
    if go is not None:
        names |= {f"go_{n}": f"Go server, {n} Go reader process{'es' if n > 1 else ''}" for n in go_tried}
        names |= {"go": "Go server, Go readers (the machine's floor)",
                  "one_go": f"flags :8001, {STREAMS:,} subscribers, Go readers"}
        res["go"] = res[f"go_{go_procs}"]
    for k, name in names.items():
        print(_line(name, res[k]))
    if go is None:
        print(f"  Go rows skipped (the machine's floor, flags with Go readers): {go_skipped}")
    asgi99, floor99 = _pct(res["asgi"].last, 99), _pct(res["direct"].last, 99)
    for k in ("one", "two"):
        p99 = _pct(res[k].last, 99)
        print(f"  {names[k]}: p99 x{p99 / asgi99:.2f} of bare ASGI, x{p99 / floor99:.2f} of the floor; server CPU per "
              f"stream and event x{res[k].cpu_us[0] / res['asgi'].cpu_us[0]:.2f} of bare ASGI, "
              f"x{res[k].cpu_us[0] / res['direct'].cpu_us[0]:.2f} of the floor")
        what = f"{STREAMS:,} SSE subscribers, " + ("one instance" if k == "one" else "two instances (Redis pub/sub)")
        record(f"kill -> slowest of {what} (p99)", p99, "ms", baseline="bare ASGI SSE, same bytes",
               baseline_value=asgi99, lower_is_better=True, limit=10.0,
               spread=(min(res[k].last, default=0.0), max(res[k].last, default=0.0)),
               note=f"p50 {_pct(res[k].last, 50):.1f} ms; floor (plain asyncio) p99 {floor99:.1f} ms")
    record("SSE fan-out: flags server CPU per subscriber per event", res["one"].cpu_us[0], "us", lower_is_better=True,
           baseline="bare ASGI SSE, same bytes", baseline_value=res["asgi"].cpu_us[0],
           note=f"plain asyncio floor {res['direct'].cpu_us[0]:.1f} us; includes the stack's other traffic on :{a}")
    load = f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the target is for an idle machine)"
    record("kill -> 1 subscriber, flags :8001 (p99), httpx client", _pct(res["idle"].last, 99), "ms",
           lower_is_better=True, limit=10.0, note=f"p50 {_pct(res['idle'].last, 50):.2f} ms; {load}")
    record("kill -> 1 subscriber, flags :8001 (p99), raw client (the request's bytes, as curl)",
           _pct(res["idle_raw"].last, 99), "ms", lower_is_better=True, limit=10.0,
           note=f"p50 {_pct(res['idle_raw'].last, 50):.2f} ms; {load}")
    if go is None:
        return
    go99, og = _pct(res["go"].last, 99), res["one_go"]
    cpu = {k: f"server {res[k].cpu_us[0]:.1f} us, readers {res[k].reader_us[0]:.1f} us" for k in ("go", "one_go")}
    print(f"  the machine's floor: {go_procs} Go reader process(es) kept of {go_tried} (the lower p99); CPU per "
          f"subscriber per event: {cpu['go']}; flags with Go readers: {cpu['one_go']}; "
          f"p99 x{_pct(og.last, 99) / go99:.2f} of the Go floor, "
          f"x{_pct(res['one'].last, 99) / go99:.2f} with Python readers")
    record(f"kill -> slowest of {STREAMS:,} SSE subscribers, Go server, Go readers: the machine's floor (p99)", go99,
           "ms", baseline="plain asyncio floor, Python readers", baseline_value=floor99, lower_is_better=True,
           spread=(min(res["go"].last, default=0.0), max(res["go"].last, default=0.0)),
           note=f"p50 {_pct(res['go'].last, 50):.1f} ms; {go_procs} Go reader process(es) (tried {go_tried}); CPU per "
                f"subscriber per event: {cpu['go']}; {load}; no target: what any server meets here")
    record(f"kill -> slowest of {STREAMS:,} SSE subscribers, one instance, Go readers (p99)", _pct(og.last, 99), "ms",
           baseline="Go server, Go readers (the machine's floor)", baseline_value=go99, lower_is_better=True,
           limit=10.0, spread=(min(og.last, default=0.0), max(og.last, default=0.0)),
           note=f"p50 {_pct(og.last, 50):.1f} ms; {go_procs} Go reader process(es); CPU per subscriber per event: "
                f"{cpu['one_go']}")

if __name__ == "__main__":
    asyncio.run(main())
