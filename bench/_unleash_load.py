"""One load tool for both sides of bench/unleash.py: `wrk` (when installed) with a Lua script cycling through
the same contexts, else a bounded Python load (httpx, CONNECTIONS keep-alive connections for SECONDS)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

__all__ = ["SECONDS", "CONNECTIONS", "Figures", "Request", "contexts", "loader", "measure"]

SECONDS = float(os.environ.get("UNLEASH_SECONDS", "8"))
CONNECTIONS = int(os.environ.get("UNLEASH_CONNECTIONS", "16"))


def contexts(n: int) -> list[tuple[str, str]]:
    """(user id, email): a third of them outside @example.com, so the rule answers both ways."""
    return [(f"user-{i}", f"user-{i}@{'other.org' if i % 3 == 0 else 'example.com'}") for i in range(1, n + 1)]


@dataclass(frozen=True, slots=True)
class Request:
    """GET `paths` (cycled) or POST `bodies` (cycled) to `url`'s host, with `headers`."""
    url: str
    method: str
    targets: list[str]  # per request: the path (GET) or the JSON body (POST)
    headers: dict[str, str]

    @classmethod
    def ofrep(cls, base: str, key: str, users: list[tuple[str, str]], headers: dict[str, str]) -> Request:
        bodies = [json.dumps({"context": {"targetingKey": u, "email": e}}) for u, e in users]
        return cls(f"{base}/ofrep/v1/evaluate/flags/{key}", "POST", bodies,
                   {"Content-Type": "application/json", **headers})

    @classmethod
    def frontend(cls, base: str, users: list[tuple[str, str]], token: str) -> Request:
        paths = ["/api/frontend?" + urlencode({"userId": u, "email": e}) for u, e in users]
        return cls(base + paths[0], "GET", paths, {"Authorization": token})


@dataclass(frozen=True, slots=True)
class Figures:
    rps: float  # every answer
    ok_rps: float  # 2xx answers only
    p50_ms: float
    p99_ms: float
    non_2xx: int
    total: int

    def line(self) -> str:
        return (f"{self.ok_rps:>8,.0f} 2xx/s  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:7.2f} ms  "
                f"non-2xx {self.non_2xx}/{self.total}")


LUA = """
local targets = {%(targets)s}
local method = "%(method)s"
local n = 0
%(headers)s
request = function()
  n = n %% #targets + 1
  if method == "GET" then return wrk.format("GET", targets[n]) end
  return wrk.format("POST", nil, nil, targets[n])
end
"""


def _quote(text: str) -> str:
    return "[==[" + text + "]==]"  # a Lua long string: no escaping


def _lua(req: Request) -> str:
    quote = _quote
    headers = "\n".join(f"wrk.headers[ {quote(k)} ] = {quote(v)}" for k, v in req.headers.items())
    return LUA % {"targets": ",".join(quote(t) for t in req.targets), "method": req.method, "headers": headers}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(req: Request, seconds: float) -> Figures:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_lua(req))
    try:
        done = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--latency", "-s", f.name,
                               req.url], capture_output=True, text=True, check=True, timeout=seconds + 60)
    finally:
        os.unlink(f.name)
    if done.stderr.strip():  # a Lua error: wrk goes on with plain GETs of the URL, which must not count
        raise RuntimeError(f"wrk: {done.stderr.strip()[:500]}")
    out = done.stdout
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = int(non.group(1)) if non else 0
    return Figures(rps, rps * (total - bad) / max(total, 1), _ms(pct["50"]), _ms(pct["99"]), bad, total)


async def _python(req: Request, seconds: float) -> Figures:
    latencies: list[float] = []
    bad = 0
    stop = time.perf_counter() + seconds
    origin = req.url.split("/", 3)
    base, first = "/".join(origin[:3]), "/" + origin[3]

    async def worker(offset: int, client: httpx.AsyncClient) -> None:
        nonlocal bad
        i = offset
        while time.perf_counter() < stop:
            t = req.targets[i % len(req.targets)]
            i += 1
            t0 = time.perf_counter()
            r = await (client.get(t) if req.method == "GET" else client.post(first, content=t))
            latencies.append(time.perf_counter() - t0)
            bad += not r.is_success

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, headers=req.headers, limits=limits, timeout=10) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i, client) for i in range(CONNECTIONS)))
        elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    n = len(latencies)
    return Figures(n / elapsed, (n - bad) / elapsed, statistics.median(latencies) * 1000, q[98] * 1000, bad, n)


def loader() -> str:
    return f"wrk -t2 -c{CONNECTIONS}" if shutil.which("wrk") else f"a Python httpx load, {CONNECTIONS} connections"


async def measure(req: Request, *, seconds: float = SECONDS) -> Figures:
    if shutil.which("wrk"):
        return await asyncio.to_thread(_wrk, req, seconds)
    return await _python(req, seconds)
