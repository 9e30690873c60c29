"""OFREP over HTTP against a bare ASGI endpoint returning the same JSON, in one run (issue 12).

A private flags service (its own port, schema and key prefix; the rate limiter on, Redis-backed, raised so
every answer is 200) and a bare ASGI app (no framework: it reads the body and sends the bytes the flags
service answered) run on the same uvicorn settings, one process each. Both are loaded by the same load
generator: `wrk` (apt-get install wrk) when present, else a Python keep-alive client (slower, so the
ratio is then understated). Figures: req/s, p50, p99, the ratio to bare, and flagd 0.16.1's figure from
the issue (measured on this machine the same way, not re-run here).

Loads: single evaluation of a flag with an `ends_with` rule, and bulk evaluation of every flag, each with
one repeated context and with 1,000 distinct contexts (wrk only).

Both servers take uvicorn's loop and HTTP parser from SAFEGUARD_HTTP_LOOP (`shared.http.loop_options`). The
run is asyncio + h11 (the services' default); with OFREP_UVLOOP_PATH=DIR (DIR from `pip install --target DIR
uvloop httptools`, or "venv" when they are installed in the venv) it is repeated on uvloop + httptools.

Each load is measured OFREP_PAIRS (3) times as a pair, bare then safeguard, one right after the other; the
pair with the median ratio is the figure, every pair's ratio is in the row's note, and the p99 is the median of
the runs (min-max as its spread).

    python -m bench ofrep_speed          # OFREP_SECONDS=5 OFREP_CONNECTIONS=16 OFREP_PAIRS=3; extra env to the service
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.flags import FLAGD, TOKEN, _free_port, _load, _spawn, _wait, flags_service
from bench.report import median_by, record

SECONDS = float(os.environ.get("OFREP_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("OFREP_CONNECTIONS", "16"))
PAIRS = int(os.environ.get("OFREP_PAIRS", "3"))  # bare / safeguard pairs per load (the median pair is the figure)
FLAGD_FIGURE = "flagd 0.16.1 (Go), single, same flag, wrk -t2 -c16: 15,900-17,800 req/s, p50 0.7 ms (issue 12)"
FLAGD_RPS = 16_850  # the middle of the 15,900-17,800
# OFREP_UVLOOP_PATH: a directory holding uvloop and httptools (put on PYTHONPATH), or "venv"
UVLOOP_PATH = os.environ.get("OFREP_UVLOOP_PATH", "")
SINGLE, BULK = "/ofrep/v1/evaluate/flags/targeted", "/ofrep/v1/evaluate/flags"
CONTEXT = {"targetingKey": "user-1", "email": "user-1@example.com"}

BARE = """
import sys, uvicorn
from shared.http import loop_options
BODIES = {}
for arg in sys.argv[2:]:
    path, _, file = arg.partition("=")
    BODIES[path] = open(file, "rb").read()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = BODIES.get(scope["path"], b"{}")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
# the settings of shared.http.serve, which runs the flags service (one process: no worker setting)
loop, http = loop_options()
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False,
            timeout_graceful_shutdown=10, loop=loop, http=http)
"""

WRK_LUA = """
local bodies = {}
local distinct = %(distinct)d
for i = 0, math.max(distinct, 1) - 1 do
  local dom = (i %% 3 == 0) and "other.org" or "example.com"
  bodies[i] = string.format('{"context":{"targetingKey":"user-%%d","email":"user-%%d@%%s"}}', i, i, dom)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = bodies[1 %% math.max(distinct, 1)]
local n = 0
request = function()
  if distinct <= 1 then return wrk.format(nil, nil, nil, wrk.body) end
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[n %% distinct])
end
"""


@dataclass(frozen=True)
class Figures:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int

    def line(self) -> str:
        return f"{self.rps:>9,.0f} req/s  p50 {self.p50_ms:5.2f} ms  p99 {self.p99_ms:6.2f} ms  non-2xx {self.non_2xx}"


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(port: int, path: str, distinct: int) -> Figures:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA % {"distinct": distinct})
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS:.0f}s", "--latency", "-s", f.name,
                              f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Figures(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
                   p50_ms=_ms(pct["50"]), p99_ms=_ms(pct["99"]), non_2xx=int(non.group(1)) if non else 0)


async def _python_load(port: int, path: str) -> Figures:
    body = json.dumps({"context": CONTEXT}).encode()
    rps, p99, errors = await _load(port, path, body)
    return Figures(rps=rps, p50_ms=float("nan"), p99_ms=p99, non_2xx=errors)


async def _measure(port: int, path: str, distinct: int) -> Figures:
    if shutil.which("wrk"):
        return await asyncio.to_thread(_wrk, port, path, distinct)
    return await _python_load(port, path)


async def _prepare(base: str) -> dict[str, bytes]:
    """Create the bench flags; return the exact bodies the service answers (the bare app sends the same)."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        for key, d in FLAGD.items():
            (await c.post("/api/flags", json={"key": key, "new": False, **d})).raise_for_status()
        bodies = {}
        for path in (SINGLE, BULK):
            r = await c.post(path, json={"context": CONTEXT})
            r.raise_for_status()
            bodies[path] = r.content
        return bodies


async def main() -> None:
    plain = await _run("", {"SAFEGUARD_HTTP_LOOP": "asyncio"})
    if UVLOOP_PATH:
        extra = [] if UVLOOP_PATH == "venv" else [UVLOOP_PATH]
        path = os.pathsep.join(p for p in (*extra, os.environ.get("PYTHONPATH", "")) if p)
        fast = await _run(" (uvloop+httptools)", {"SAFEGUARD_HTTP_LOOP": "uvloop", "PYTHONPATH": path})
        print("uvloop+httptools against asyncio+h11 (the services' default), safeguard:")
        for name, o in fast.items():
            print(f"  {name:<22} x{o.rps / plain[name].rps:.2f} req/s, p99 {o.p99_ms:.2f} vs {plain[name].p99_ms:.2f} ms")
            record(f"OFREP {name} (uvloop+httptools)", o.rps, "req/s", baseline="same, asyncio+h11",
                   baseline_value=plain[name].rps)


def _record_pairs(name: str, pairs: list[tuple[Figures, Figures]], *, flagd: bool) -> Figures:
    """The pair with the median ratio is the figure (every pair's ratio in the note); p99: the median run."""
    b, o = median_by(pairs, lambda bo: bo[1].rps / bo[0].rps)
    ratios = ", ".join(f"{y.rps / x.rps:.2f}" for x, y in pairs)
    rps, p99s = [y.rps for _, y in pairs], [y.p99_ms for _, y in pairs]
    record(f"OFREP {name}", o.rps, "req/s", baseline="bare ASGI, same uvicorn settings", baseline_value=b.rps,
           target=0.5, spread=(min(rps), max(rps)), note=f"non-2xx {sum(y.non_2xx for _, y in pairs)}; the median "
                                                          f"of {len(pairs)} bare / safeguard pairs, ratios {ratios}")
    p99 = median_by(p99s, float)
    bare_p99 = median_by([x.p99_ms for x, _ in pairs], float)
    record(f"OFREP {name}, p99", p99, "ms", baseline="bare ASGI, p99", baseline_value=bare_p99, lower_is_better=True,
           limit=10, spread=(min(p99s), max(p99s)), note=f"the median of {len(pairs)} runs")
    if flagd:
        record(f"OFREP {name}", o.rps, "req/s", baseline="flagd 0.16.1 (Go), issue 12, not re-run",
               baseline_value=FLAGD_RPS)
    print(f"    median pair x{o.rps / b.rps:.2f} of bare throughput (pairs {ratios}); p99 median {p99:.2f} ms "
          f"({'under' if p99 < 10 else 'OVER'} the 10 ms target)")
    return o


async def _run(server: str, env: dict[str, str]) -> dict[str, Figures]:
    loader = "wrk -t2 -c%d" % CONNECTIONS if shutil.which("wrk") else "a Python client (install wrk)"
    async with flags_service("ofrep", **env) as (base, port):
        bodies = await _prepare(base)
        tmp = Path(tempfile.mkdtemp(prefix="ofrep-bench-"))
        files = []
        for i, (path, body) in enumerate(bodies.items()):
            (tmp / f"{i}.json").write_bytes(body)
            files.append(f"{path}={tmp / f'{i}.json'}")
        bare_port = _free_port()
        bare = _spawn(["-c", BARE, str(bare_port), *files], env)
        try:
            await _wait(f"http://127.0.0.1:{bare_port}/", bare)
            print(f"OFREP over HTTP{server}, {loader}, {SECONDS:.0f} s each, one process each, loopback, {os.cpu_count()} "
                  f"cores, load average {os.getloadavg()[0]:.1f}; rate limiter on, raised so all are 200")
            print(f"  {FLAGD_FIGURE}")
            cases = [("single", SINGLE, 1), ("bulk", BULK, 1)]
            ours: dict[str, Figures] = {}
            if shutil.which("wrk"):
                cases += [("single, 1000 contexts", SINGLE, 1000), ("bulk, 1000 contexts", BULK, 1000)]
            for name, path, distinct in cases:
                print(f"  {name}:")
                # bare, then ours, PAIRS times: neighbours in time compare best on a shared machine (one pair
                # swings by a third with what else runs)
                pairs: list[tuple[Figures, Figures]] = []
                for _ in range(PAIRS):
                    b = await _measure(bare_port, path, distinct)
                    o = await _measure(port, path, distinct)
                    pairs.append((b, o))
                    print(f"    bare ASGI  {b.line()}")
                    print(f"    safeguard  {o.line()}   x{o.rps / b.rps:.2f}")
                ours[name] = _record_pairs(f"{name}{server}", pairs, flagd=name == "single")
        finally:
            bare.terminate()
            bare.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)
    return ours


if __name__ == "__main__":
    asyncio.run(main())
