"""`safeguard preflight` against the running stack: the flags API through :3000, the demo app on :8100, and
per test a private PostgreSQL, a private Redis, a backup directory and a flag key of its own. The all-pass
case probes an in-process demo v2 (its `streaks` route reads the test's flag)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.config import load_config
from deploy import backup as backups
from deploy import migrations
from deploy.app import AppSpec, load_app
from deploy.preflight import LINES, Check, run_preflight
from deploy.settings import ROOT, DeploySettings

pytestmark = pytest.mark.integration

DEMO = ROOT / "examples" / "demo"
USER = "safeguard-preflight"
Flag = Callable[..., Awaitable[str]]


@pytest.fixture
async def flags_api() -> AsyncIterator[httpx.AsyncClient]:
    config = load_config()
    if not config.token:
        pytest.fail("no admin token (make up writes .stack/admin-token)")
    headers = {"Authorization": f"Bearer {config.token}", "X-Safeguard-Actor": "test-preflight"}
    async with httpx.AsyncClient(base_url=config.front_url, headers=headers, timeout=10) as c:
        yield c


@pytest.fixture
async def flag(flags_api: httpx.AsyncClient) -> AsyncIterator[Flag]:
    """Create flags with unique keys (`flag(state=..., ...)`); every one is deleted after the test."""
    made: list[str] = []

    async def make(**body: Any) -> str:
        key = f"pf-{uuid.uuid4().hex[:12]}"
        r = await flags_api.post("/api/flags", json={"key": key, **body})
        assert r.status_code == 201, r.text
        made.append(key)
        return key
    yield make
    for key in made:
        await flags_api.delete(f"/api/flags/{key}", params={"reason": "test_preflight cleanup"})


async def _get(api: httpx.AsyncClient, key: str) -> dict[str, Any]:
    r = await api.get(f"/api/flags/{key}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _spec(tmp_path: Path, *, flag: str, url: str, migrations_dir: Path = DEMO / "migrations",
          probe: str = "/api/streaks?user={user}", breakers_path: str = "/api/breakers",
          breakers: tuple[str, ...] = ("postgres", "redis"), v2_migration: str = "0002_items_badge",
          probe_timeout_s: float = 1.5, extra: str = "") -> AppSpec:
    path = tmp_path / "safeguard.toml"
    path.write_text(f"""
name = "pf"
schema = "demo"
migrations = "{migrations_dir}"
url = "{url}"
[releases.v1]
migration = "0001_items"
flags = []
[releases.v2]
migration = "{v2_migration}"
flags = ["{flag}"]
[rehearse]
verify = ["SELECT count(*) FROM demo.items"]
previous = "{DEMO / 'queries' / 'v1.sql'}"
[preflight]
backup_max_age_minutes = 60
breakers_path = "{breakers_path}"
breakers = {json.dumps(list(breakers))}
probe_user = "{USER}"
probe_timeout_s = {probe_timeout_s}
{extra}
[preflight.flags.{flag}]
path = "{probe}"
on = 200
off = 404
""")
    return load_app(str(path))


def _settings(dsn: str, backup_dir: Path) -> DeploySettings:
    settings = DeploySettings(DEPLOY_DATABASE_URL=dsn, backup_dir=backup_dir, keep=3)  # type: ignore[call-arg]
    assert settings.dsn == dsn  # never the stack's database
    return settings


def _by_id(checks: list[Check]) -> dict[str, Check]:
    return {c.id: c for c in checks}


# ---- an in-process demo v2 whose `streaks` route reads the test's flag ------------------------------

class _Alias:
    """The demo's flag source, over OFREP through the front door, with `streaks` read as the test's flag."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self._ofrep: Any = None

    async def enabled(self, key: str, *, targeting_key: str) -> bool:
        from examples.demo.flags import OfrepFlags

        if self._ofrep is None:  # made in the server's own event loop
            self._ofrep = OfrepFlags(load_config().front_url, cache_s=0, timeout_s=2)
        result: bool = await self._ofrep.enabled(self.names.get(key, key), targeting_key=targeting_key)
        return result


class _Served:
    def __init__(self, app: Any) -> None:
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> _Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self._up():
            if time.monotonic() > deadline or not self.thread.is_alive():
                pytest.fail("the in-process demo did not start")
            time.sleep(0.1)
        return self

    def _up(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def demo_v2(private_postgres: Any, private_redis: Any) -> Iterator[tuple[_Served, dict[str, str]]]:
    from examples.demo.app import create_app
    from examples.demo.settings import DemoSettings
    from shared.settings import PostgresSettings, RedisSettings
    from shared.testing.fakes import InMemoryPublisher

    names: dict[str, str] = {}
    settings = DemoSettings(version="v2", color="green", service=f"pf{uuid.uuid4().hex[:8]}", commands=False,
                            postgres=PostgresSettings(dsn=private_postgres.dsn),  # type: ignore[arg-type]
                            redis=RedisSettings(url=private_redis.url))  # type: ignore[arg-type]
    served = _Served(create_app(settings, publisher=InMemoryPublisher(), flags=_Alias(names))).start()
    try:
        yield served, names
    finally:
        served.stop()


async def _safeguard(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    exe = str(Path(sys.executable).parent / "safeguard")
    proc = await asyncio.create_subprocess_exec(exe, *args, env={**os.environ, **(env or {})}, cwd=str(ROOT),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# ---- the tests ---------------------------------------------------------------------------------------

async def test_every_line_passes_against_demo_v2_and_the_cli_exits_0(
        demo_v2: tuple[_Served, dict[str, str]], private_postgres: Any, flag: Flag, flags_api: httpx.AsyncClient,
        tmp_path: Path) -> None:
    served, names = demo_v2
    key = await flag(description="preflight all-pass")
    names["streaks"] = key
    spec = _spec(tmp_path, flag=key, url=served.url)
    before = await _get(flags_api, key)
    code, out, err = await _safeguard(
        "preflight", "--app", str(spec.source), "--version", "v2", "--target", served.url, "--backup", "--json",
        env={"DEPLOY_DATABASE_URL": private_postgres.dsn, "DEPLOY_BACKUP_DIR": str(tmp_path / "backups")})
    report = json.loads(out)
    assert code == 0, (out, err)
    assert report["ok"] is True and [c["id"] for c in report["checks"]] == [e[0] for e in LINES]
    assert all(c["ok"] for c in report["checks"]), report
    checks = {c["id"]: c for c in report["checks"]}
    assert "verified" in checks["backup"]["why"] or "restored" in checks["backup"]["why"]
    assert f"{key}: on -> 200" in checks["flags-toggle"]["why"]
    assert len(backups.list_backups(directory=tmp_path / "backups")) == 1  # --backup took one
    after = await _get(flags_api, key)
    assert {k: v for k, v in after.items() if k not in ("version", "updatedAt")} == \
        {k: v for k, v in before.items() if k not in ("version", "updatedAt")}
    audit = (await flags_api.get(f"/api/flags/{key}/audit")).json()
    assert {e["actor"] for e in audit} >= {"admin:safeguard-preflight"}


@pytest.mark.parametrize(("body", "why"), [
    ({"state": "ENABLED"}, "defaultVariant is 'on'"),
    ({"new": False}, "not marked new"),
    ({"state": "ENABLED", "defaultVariant": "off", "targeting": {"if": [{"==": [{"var": "email"}, "a@b.c"]}, "on"]}},
     "targeting can serve 'on'"),
    ("rollout", "rolled out to 10 %"),
])
async def test_a_flag_that_is_on_by_default_fails_new_features_are_off(
        flag: Flag, flags_api: httpx.AsyncClient, tmp_path: Path, body: Any, why: str) -> None:
    key = await flag(**(body if isinstance(body, dict) else {}))
    if body == "rollout":
        assert (await flags_api.post(f"/api/flags/{key}/rollout", json={"percent": 10})).status_code == 200
    spec = _spec(tmp_path, flag=key, url="http://127.0.0.1:8100")
    [check] = await run_preflight(spec=spec, version="v2", target=None, take_backup=False, only={"flags-off"})
    assert not check.ok and why in check.why and key in check.why


async def test_a_new_flag_that_is_off_passes_and_a_missing_one_fails(flag: Flag, tmp_path: Path) -> None:
    key = await flag()
    [ok] = await run_preflight(spec=_spec(tmp_path, flag=key, url="http://127.0.0.1:8100"), version="v2",
                               target=None, take_backup=False, only={"flags-off"})
    assert ok.ok and f"{key}: DISABLED, serves 'off'" in ok.why
    missing = f"pf-missing-{uuid.uuid4().hex[:8]}"
    checks = await run_preflight(spec=_spec(tmp_path, flag=missing, url="http://127.0.0.1:8100"), version="v2",
                                 target=None, take_backup=False, only={"flags-off", "flags-toggle"})
    assert [c.ok for c in checks] == [False, False] and all(f"{missing} do not exist yet" in c.why for c in checks)


@pytest.mark.parametrize("before", ["new-off", "rolled-out-then-killed", "enabled-with-targeting"])
async def test_a_probe_the_app_does_not_answer_fails_with_its_status_and_the_flag_is_restored(
        demo_v2: tuple[_Served, dict[str, str]], flag: Flag, flags_api: httpx.AsyncClient, tmp_path: Path,
        before: str) -> None:
    served, names = demo_v2
    names["streaks"] = f"pf-never-{uuid.uuid4().hex[:8]}"  # the app reads a flag that never exists: 404 always
    if before == "enabled-with-targeting":
        key = await flag(state="ENABLED", defaultVariant="off", description="kept",
                         targeting={"if": [{"==": [{"var": "email"}, "nobody@invalid"]}, "off", "off"]})
    else:
        key = await flag(description="kept")
    if before == "rolled-out-then-killed":
        assert (await flags_api.post(f"/api/flags/{key}/rollout", json={"percent": 10})).status_code == 200
        assert (await flags_api.post(f"/api/flags/{key}/kill", json={})).status_code == 200
    spec = _spec(tmp_path, flag=key, url="http://127.0.0.1:8100")
    was = await _get(flags_api, key)
    [check] = await run_preflight(spec=spec, version="v2", target=served.url, take_backup=False,
                                  only={"flags-toggle"})
    assert not check.ok
    assert f"on: {served.url}/api/streaks?user=safeguard-preflight answered HTTP 404" in check.why
    assert "expected 200" in check.why and "(the target runs v2)" in check.why
    now = await _get(flags_api, key)
    assert now["version"] > was["version"]  # it was changed, and put back
    assert {k: v for k, v in now.items() if k not in ("version", "updatedAt")} == \
        {k: v for k, v in was.items() if k not in ("version", "updatedAt")}


async def test_a_missing_old_or_unverified_backup_fails(private_postgres: Any, flag: Flag, tmp_path: Path) -> None:
    dsn, directory = private_postgres.dsn, tmp_path / "backups"
    spec = _spec(tmp_path, flag=await flag(), url="http://127.0.0.1:8100")

    async def line(take: bool = False) -> Check:
        [c] = await run_preflight(spec=spec, version="v2", target=None, take_backup=take, only={"backup"},
                                  settings=_settings(dsn, directory))
        return c

    assert "no backup of database postgres" in (c := await line()).why and not c.ok
    item = await backups.backup(dsn=dsn, directory=directory, keep=3, check=False)
    assert "never restored" in (c := await line()).why and not c.ok
    await backups.verify(dsn=dsn, item=item)
    assert (c := await line()).ok, c.why
    manifest = item.path.with_suffix(".json")
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "created": (datetime.now(UTC) - timedelta(hours=3)).isoformat()}))
    assert "min old (at most 60 min)" in (c := await line()).why and not c.ok
    assert (c := await line(take=True)).ok and "restored into a scratch database" in c.why
    assert len(backups.list_backups(directory=directory)) == 2


async def test_a_migration_without_a_down_file_fails(private_postgres: Any, flag: Flag, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(DEMO / "migrations", directory)
    (directory / "0003_items_note.up.sql").write_text("ALTER TABLE demo.items ADD COLUMN IF NOT EXISTS note text;\n")
    await migrations.migrate(dsn=private_postgres.dsn, schema="demo", directory=directory, until="0001_items")
    spec = _spec(tmp_path, flag=await flag(), url="http://127.0.0.1:8100", migrations_dir=directory,
                 v2_migration="0003_items_note")
    only = {"migration", "rollback-script", "rollback-plan"}
    settings = _settings(private_postgres.dsn, tmp_path / "backups")
    checks = _by_id(await run_preflight(spec=spec, version="v2", target=None, take_backup=False, only=only,
                                        settings=settings))
    assert not checks["rollback-script"].ok and "no rollback file for 0003_items_note" in checks["rollback-script"].why
    assert not checks["migration"].ok and "migrate down" in checks["migration"].why
    assert not checks["rollback-plan"].ok and "needs down files for 0003_items_note" in checks["rollback-plan"].why

    (directory / "0003_items_note.down.sql").write_text("ALTER TABLE demo.items DROP COLUMN IF EXISTS note;\n")
    checks = _by_id(await run_preflight(spec=spec, version="v2", target=None, take_backup=False, only=only,
                                        settings=settings))
    assert all(c.ok for c in checks.values()), checks
    assert "pending 0002_items_badge, 0003_items_note" in checks["migration"].why


async def test_a_blocking_migration_fails_the_lint(private_postgres: Any, flag: Flag, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(DEMO / "migrations", directory)
    (directory / "0003_drop_points.up.sql").write_text("ALTER TABLE demo.items DROP COLUMN points;\n")
    (directory / "0003_drop_points.down.sql").write_text("ALTER TABLE demo.items ADD COLUMN points integer;\n")
    spec = _spec(tmp_path, flag=await flag(), url="http://127.0.0.1:8100", migrations_dir=directory,
                 v2_migration="0003_drop_points")
    [check] = await run_preflight(spec=spec, version="v2", target=None, take_backup=False, only={"migration"},
                                  settings=_settings(private_postgres.dsn, tmp_path / "backups"))
    assert not check.ok and "0003_drop_points.up.sql:1 ban-drop-column" in check.why


@pytest.mark.parametrize(("kw", "line", "why"), [
    ({"breakers_path": "/api/no-breakers"}, "db-breaker", "answered HTTP 404"),
    ({"breakers_path": "/api/no-breakers"}, "redis-breaker", "answered HTTP 404"),
    ({"breakers": ("mysql", "redis")}, "db-breaker", "has no breaker mysql"),
    ({"breakers": ("postgres",)}, "redis-breaker", "no Redis breaker named"),
    ({"breakers": ("postgres", "redis-sessions")}, "redis-breaker", "has no breaker redis-sessions"),
])
async def test_missing_breakers_fail(flag: Flag, tmp_path: Path, kw: dict[str, Any], line: str, why: str) -> None:
    spec = _spec(tmp_path, flag=await flag(), url="http://127.0.0.1:8100", **kw)
    [check] = await run_preflight(spec=spec, version="v2", target=None, take_backup=False, only={line})
    assert not check.ok and why in check.why


async def test_breakers_and_rate_limiting_on_the_stacks_demo_pass(flag: Flag, tmp_path: Path) -> None:
    spec = _spec(tmp_path, flag=await flag(), url="http://127.0.0.1:8100")
    checks = await run_preflight(spec=spec, version="v2", target=None, take_backup=False,
                                 only={"db-breaker", "redis-breaker", "rate-limit"})
    assert all(c.ok for c in checks), checks
    assert "RateLimit-Policy" in checks[-1].why


async def test_an_app_without_rate_limiting_fails(flag: Flag, tmp_path: Path) -> None:
    # the flags service's /healthz is exempt from its limiter: an answer without RateLimit headers
    spec = _spec(tmp_path, flag=await flag(), url="http://127.0.0.1:8001", extra='ratelimit_path = "/healthz"')
    [check] = await run_preflight(spec=spec, version="v2", target=None, take_backup=False, only={"rate-limit"})
    assert not check.ok and "without RateLimit-Policy / RateLimit headers" in check.why


async def test_cli_exit_codes_and_json(flag: Flag, tmp_path: Path) -> None:
    key = await flag()
    spec = _spec(tmp_path, flag=key, url="http://127.0.0.1:8100", breakers_path="/api/no-breakers")
    env = {"DEPLOY_BACKUP_DIR": str(tmp_path / "empty"), "COLUMNS": "400"}  # no wrapped why
    code, out, _ = await _safeguard("preflight", "--app", str(spec.source), "--version", "v2", env=env)
    assert code == 1
    assert "FAIL" in out and "Database circuit breaker configured" in out and "no backup of database" in out

    code, out, _ = await _safeguard("preflight", "--app", str(spec.source), "--version", "v2", "--json", env=env)
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    failed = {c["id"] for c in report["checks"] if not c["ok"]}
    assert {"backup", "db-breaker", "redis-breaker", "flags-toggle"} <= failed and "flags-off" not in failed

    code, _, err = await _safeguard("preflight", "--app", str(spec.source), "--version", "v9")
    assert code == 2 and "no release 'v9'" in err

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket is closed
    code, out, _ = await _safeguard("preflight", "--app", str(spec.source), "--version", "v2", "--json",
                                    env={**env, "SAFEGUARD_FRONT_URL": f"http://127.0.0.1:{closed}"})
    report = json.loads(out)
    assert code == 3 and next(c for c in report["checks"] if c["id"] == "flags-off")["unreachable"] is True


async def test_restore_leaves_a_flag_someone_else_changed_during_the_probe(flag: Flag,
                                                                           flags_api: httpx.AsyncClient) -> None:
    from deploy.preflight_flags import FlagsApi, ProbeFailed, restore

    key = await flag()
    before = await _get(flags_api, key)
    config = load_config()
    async with httpx.AsyncClient(timeout=10) as http:
        api = FlagsApi(url=config.front_url, token=config.token, http=http)
        await restore(api=api, before=before, ours=before["version"])  # nothing changed: nothing written
        assert (await _get(flags_api, key))["version"] == before["version"]
        r = await flags_api.post(f"/api/flags/{key}/rollout", json={"percent": 50, "reason": "someone else"})
        assert r.status_code == 200
        with pytest.raises(ProbeFailed, match="changed by someone else during the probe"):
            await restore(api=api, before=before, ours=before["version"])
    assert (await _get(flags_api, key))["rolloutPercent"] == 50  # their change stands


async def test_a_line_past_its_time_fails_and_a_cut_probe_still_restores_the_flag(
        demo_v2: tuple[_Served, dict[str, str]], flag: Flag, flags_api: httpx.AsyncClient, tmp_path: Path) -> None:
    served, names = demo_v2
    names["streaks"] = f"pf-never-{uuid.uuid4().hex[:8]}"  # never on: the probe would wait its 5 s
    key = await flag()
    spec = _spec(tmp_path, flag=key, url=served.url, probe_timeout_s=5, extra="line_timeout_s = 0.5")
    was = await _get(flags_api, key)
    [check] = await run_preflight(spec=spec, version="v2", target=None, take_backup=False, only={"flags-toggle"})
    assert not check.ok and "did not finish in 0.5 s" in check.why and check.seconds < 4
    now = await _get(flags_api, key)
    assert now["version"] > was["version"]
    assert {k: v for k, v in now.items() if k not in ("version", "updatedAt")} == \
        {k: v for k, v in was.items() if k not in ("version", "updatedAt")}
