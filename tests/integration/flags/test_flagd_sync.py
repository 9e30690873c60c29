"""flagd's sync protocol (gRPC flagd.sync.v1) with the real providers: the Python flagd provider in IN_PROCESS
mode, the Node flagd provider (in-process) and the Node OFREP provider, against a flags app on free ports
(real Postgres, Redis, Kafka)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from openfeature.schemas.protobuf.flagd.sync.v1 import sync_pb2, sync_pb2_grpc
from pydantic import SecretStr

from services.flags.app import create_app
from shared.auth import AuthSettings
from shared.settings import KafkaSettings
from tests.integration.flags.conftest import ADMIN, ThreadServer, drop, flags_settings

NODE_DIR = Path(__file__).parents[2] / "node"
KILL_BOUND_S = 2.0


class Stack:
    def __init__(self, server: ThreadServer) -> None:
        self.server = server
        self.url = server.url
        self.sync_port: int = server.server.config.app.state.sync_port
        self.http = httpx.Client(base_url=server.url, headers=ADMIN, timeout=10)

    def create(self, key: str, **body: Any) -> None:
        r = self.http.post("/api/flags", json={"key": key, "new": True, **body})
        assert r.status_code == 201, r.text

    def kill(self, key: str) -> float:
        started = time.monotonic()
        r = self.http.post(f"/api/flags/{key}/kill", json={"reason": "test"})
        assert r.status_code == 200, r.text
        return started


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, postgres_dsn: str, redis_url: str) -> Iterator[Stack]:
    unique = "s" + uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"t{unique}.")
    settings = flags_settings(unique, kafka, postgres_dsn, redis_url, sync_port=0)
    server = ThreadServer(create_app(settings)).start()
    try:
        yield Stack(server)
    finally:
        server.stop()
        asyncio.run(drop(settings, redis_url))


def _stub(port: int) -> tuple[grpc.Channel, sync_pb2_grpc.FlagSyncServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, sync_pb2_grpc.FlagSyncServiceStub(channel)


def _wait(check: Callable[[], bool], bound_s: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > bound_s:
            return time.monotonic() - started
        time.sleep(0.005)
    return time.monotonic() - started


def _key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


GAMIFICATION_LIKE = {"state": "ENABLED", "targeting": {"if": [{"ends_with": [{"var": "email"}, "@beta.example"]},
                                                              "on", "off"]}, "defaultVariant": "on"}


def test_fetch_all_flags_is_the_export_with_kills_serving_off(stack: Stack) -> None:
    key = _key("fetch")
    stack.create(key, state="ENABLED")
    stack.kill(key)
    channel, stub = _stub(stack.sync_port)
    with channel:
        doc = json.loads(stub.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), timeout=5).flag_configuration)
    assert doc == stack.http.get("/api/flags/_export?serve_off=true").json()
    assert doc["flags"][key] == {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}


def test_sync_stream_sends_a_full_document_per_change_to_every_stream(stack: Stack) -> None:
    key = _key("stream")
    channel, stub = _stub(stack.sync_port)
    with channel:
        streams = [stub.SyncFlags(sync_pb2.SyncFlagsRequest(), timeout=10) for _ in range(3)]
        first = [json.loads(next(s).flag_configuration) for s in streams]
        assert all(key not in d["flags"] for d in first)
        stack.create(key, state="ENABLED")
        for s in streams:
            doc = json.loads(next(s).flag_configuration)
            while key not in doc["flags"]:
                doc = json.loads(next(s).flag_configuration)
            assert doc["flags"][key]["defaultVariant"] == "on" and set(doc["flags"]) >= set(first[0]["flags"])
        for s in streams:
            s.cancel()


def test_a_bad_request_is_a_grpc_error_and_the_server_goes_on(stack: Stack) -> None:
    channel, stub = _stub(stack.sync_port)
    with channel:
        garbage = channel.unary_unary("/flagd.sync.v1.FlagSyncService/FetchAllFlags",
                                      request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as bad:
            garbage(b"\xff\xff\xff\xff", timeout=5)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "FetchAllFlagsRequest" in (bad.value.details() or "")
        unknown = channel.unary_unary("/flagd.sync.v1.FlagSyncService/NoSuchMethod",
                                      request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as missing:
            unknown(b"", timeout=5)
        assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert stub.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), timeout=5).flag_configuration


def test_python_flagd_provider_in_process_evaluates_and_sees_a_kill(stack: Stack) -> None:
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.flag_evaluation import Reason

    plain, targeted = _key("py"), _key("py-gamification")
    stack.create(plain, state="ENABLED")
    stack.create(targeted, **GAMIFICATION_LIKE)
    provider = FlagdProvider(resolver_type=ResolverType.IN_PROCESS, host="127.0.0.1", port=stack.sync_port,
                             deadline_ms=5000)
    api.set_provider_and_wait(provider, domain="flagd-sync")
    client = api.get_client("flagd-sync")
    try:
        beta, other = EvaluationContext("u1", {"email": "a@beta.example"}), EvaluationContext("u2", {"email": "b@x.io"})
        assert client.get_boolean_value(plain, False) is True
        assert client.get_boolean_value(targeted, False, beta) is True
        assert client.get_boolean_value(targeted, True, other) is False
        started = stack.kill(targeted)
        took = _wait(lambda: client.get_boolean_value(targeted, True, beta) is False, KILL_BOUND_S * 2)
        assert took < KILL_BOUND_S, f"the kill took {took:.3f} s to reach the provider"
        details = client.get_boolean_details(targeted, True, beta)  # the code says true; the kill wins
        assert (details.value, details.variant, details.reason) == (False, "off", Reason.STATIC)
        assert time.monotonic() - started < KILL_BOUND_S + 1
        assert client.get_boolean_value(plain, False) is True  # the others untouched
    finally:
        provider.shutdown()


def _node(script: str, env: dict[str, str]) -> dict[str, Any]:
    """Run tests/node/<script> with node (installing its locked packages once) and parse its JSON line."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm (Node 20+) are needed for the Node provider tests")
    if not (NODE_DIR / "node_modules" / ".package-lock.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=NODE_DIR, check=True,
                       capture_output=True, timeout=300)
    done = subprocess.run(["node", script], cwd=NODE_DIR, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_node_flagd_provider_in_process_evaluates_and_sees_a_kill(stack: Stack) -> None:
    key = _key("node-gamification")
    stack.create(key, **GAMIFICATION_LIKE)
    out = _node("flagd_inprocess.mjs", {"SYNC_PORT": str(stack.sync_port), "FLAGS_URL": stack.url,
                                        "ADMIN_TOKEN": ADMIN["Authorization"].split()[1], "FLAG_KEY": key})
    assert out["before"] == {"beta": True, "other": False}
    assert out["killStatus"] == 200
    assert out["killSeenMs"] is not None and out["killSeenMs"] < KILL_BOUND_S * 1000, out
    assert out["after"] == {"value": False, "variant": "off", "reason": "STATIC"}


@pytest.mark.e2e
def test_node_ofrep_provider_through_the_front_door() -> None:
    front = os.environ.get("SAFEGUARD_FRONT_URL", "http://127.0.0.1:3000")
    token = os.environ.get("SAFEGUARD_ADMIN_TOKEN")
    if not token:
        pytest.fail("SAFEGUARD_ADMIN_TOKEN is not set: load .stack/env (`make up`)")
    admin = httpx.Client(base_url=front, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    key = _key("node-ofrep")
    try:
        r = admin.post("/api/flags", json={"key": key, "new": True, "reason": "node ofrep test", **GAMIFICATION_LIKE})
        assert r.status_code == 201, r.text
        out = _node("ofrep.mjs", {"BASE_URL": front, "ADMIN_TOKEN": token, "FLAG_KEY": key})
    finally:
        admin.delete(f"/api/flags/{key}", params={"reason": "node ofrep test done"})
    assert out["before"] == {"value": True, "variant": "on", "reason": "TARGETING_MATCH", "errorCode": None}
    assert out["killStatus"] == 200
    assert out["after"] == {"value": False, "variant": "off", "reason": "DISABLED", "errorCode": None}
    assert out["missing"] == {"value": True, "errorCode": "FLAG_NOT_FOUND"}


async def test_with_client_keys_a_sync_call_needs_one_like_the_snapshot(
        unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str) -> None:
    auth = AuthSettings(env="local", admin_token=SecretStr("test-admin-token"),
                        client_keys={"demo": SecretStr("demo-key")})
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url, sync_port=0).model_copy(
        update={"auth": auth})
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.state.sync_port}") as channel:
                fetch = sync_pb2_grpc.FlagSyncServiceStub(channel).FetchAllFlags
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await fetch(sync_pb2.FetchAllFlagsRequest(), timeout=5)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
                with pytest.raises(grpc.aio.AioRpcError) as wrong:
                    await fetch(sync_pb2.FetchAllFlagsRequest(), metadata=(("x-api-key", "nope"),), timeout=5)
                assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
                for md in (("authorization", "Bearer demo-key"), ("x-api-key", "demo-key")):
                    ok = await fetch(sync_pb2.FetchAllFlagsRequest(), metadata=(md,), timeout=5)
                    assert "gamification" in json.loads(ok.flag_configuration)["flags"]
            assert await asyncio.to_thread(_python_provider_with_key, app.state.sync_port, "demo-key") is False
    finally:
        await drop(settings, redis_url)


def _python_provider_with_key(port: int, key: str) -> bool:
    """The Python flagd provider sending a client key (local channel credentials + a bearer token)."""
    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType

    creds = grpc.composite_channel_credentials(grpc.local_channel_credentials(),
                                               grpc.access_token_call_credentials(key))
    provider = FlagdProvider(resolver_type=ResolverType.IN_PROCESS, host="127.0.0.1", port=port, deadline_ms=5000,
                             channel_credentials=creds)
    api.set_provider_and_wait(provider, domain="flagd-sync-key")
    try:
        return api.get_client("flagd-sync-key").get_boolean_value("gamification", True)
    finally:
        provider.shutdown()


async def test_a_taken_sync_port_leaves_the_http_service_up(
        stack: Stack, unique: str, kafka_settings: KafkaSettings, postgres_dsn: str, redis_url: str) -> None:
    settings = flags_settings(unique, kafka_settings, postgres_dsn, redis_url, sync_port=stack.sync_port)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            assert app.state.sync_port is None  # never shares the port (no SO_REUSEPORT)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://flags") as client:
                assert (await client.get("/readyz")).status_code == 200
        channel, stub = _stub(stack.sync_port)
        with channel:  # the first server still answers alone
            assert stub.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), timeout=5).flag_configuration
    finally:
        await drop(settings, redis_url)
