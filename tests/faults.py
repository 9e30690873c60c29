"""Private, throwaway Redis / PostgreSQL / Kafka processes for fault tests.

The shared native stack (`make up`) must stay healthy for every other test, so a test that stops
Postgres, kills Redis or SIGSTOPs the broker does it to a server of its own: started here on a free
loopback port from the same binaries the stack uses (redis-server, PostgreSQL 15, the Kafka jars in
`.stack/kafka/lib`), and removed when the test ends. Real servers, real faults, no mocks.

    def test_x(private_redis, private_postgres, private_kafka): ...
    private_postgres.stop(); ...; private_postgres.start()
    with private_kafka.paused(): ...        # SIGSTOP .. SIGCONT
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[1]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
KAFKA_LIB = ROOT / ".stack" / "kafka" / "lib"

__all__ = ["PrivateServer", "PrivateRedis", "PrivatePostgres", "PrivateKafka", "free_port", "ensure_installed"]


def ensure_installed() -> None:
    """The binaries and jars these servers run from: `stack/install.sh` (idempotent; apt + Maven Central)
    when something is missing, e.g. in CI's containers-mode step, which runs before any `make up`."""
    if any(KAFKA_LIB.glob("kafka_*.jar")) and shutil.which("redis-server") and (PG_BIN / "postgres").exists():
        return
    done = subprocess.run([str(ROOT / "stack" / "install.sh")], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"stack/install.sh failed: {done.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_tcp(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class PrivateServer:
    """One server process: start / stop (SIGTERM) / kill (SIGKILL) / pause (SIGSTOP) / resume."""

    name = "server"
    start_timeout = 30.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """One-time setup before the first start (initdb, format)."""

    def ready(self) -> None:
        _wait_tcp(self.port, self.start_timeout)

    def popen_kwargs(self) -> dict[str, object]:
        return {}

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         start_new_session=True, **self.popen_kwargs())  # type: ignore[call-overload]
        try:
            self.ready()
        except Exception:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{self.name} did not start: {tail}") from None

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self.proc.wait(10)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.pause()
        try:
            yield
        finally:
            self.resume()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()


class PrivateRedis(PrivateServer):
    name = "redis"

    def command(self) -> list[str]:
        return [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.workdir), "--appendonly", "yes", "--save", ""]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _pg_user() -> str | None:
    """Postgres refuses to run as root: use the `postgres` account then."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam("postgres").pw_name
    raise RuntimeError("running as root and there is no `postgres` account to run PostgreSQL as")


class PrivatePostgres(PrivateServer):
    name = "postgres"

    def prepare(self) -> None:
        user = _pg_user()
        self.data = self.workdir / "pgdata"
        if user:
            shutil.chown(self.workdir, user)
        cmd = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "safeguard", "--auth=trust", "-E", "UTF8",
               "--no-sync"]
        subprocess.run(self._as(cmd), check=True, capture_output=True, cwd="/")

    def _as(self, cmd: list[str]) -> list[str]:
        user = _pg_user()
        return ["runuser", "-u", user, "--", *cmd] if user else cmd

    def command(self) -> list[str]:
        return self._as([str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.workdir),
                         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100"])

    def stop(self, timeout: float = 30) -> None:
        # SIGINT is Postgres' "fast" shutdown: connections are cut at once, like an outage
        if self.proc is not None and self.proc.poll() is None:
            self._signal(signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            r = subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                               capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("postgres not ready")

    @property
    def dsn(self) -> str:
        return f"postgresql://safeguard@127.0.0.1:{self.port}/postgres"


class PrivateKafka(PrivateServer):
    """A single-node KRaft broker (broker + controller) on its own ports and data. With a login in the
    environment (KAFKA_SASL_USERNAME / _PASSWORD, as `.stack/env` sets) its listener wants that SCRAM
    login, like the stack's broker, so clients built from the environment connect unchanged."""

    name = "kafka"
    start_timeout = 90.0

    def prepare(self) -> None:
        if not any(KAFKA_LIB.glob("kafka_*.jar")):
            raise RuntimeError(f"no Kafka jars in {KAFKA_LIB}: stack/install.sh fetches them")
        self.controller_port = free_port()
        data = self.workdir / "data"
        self.props = self.workdir / "server.properties"
        settings = KafkaSettings()
        sasl = settings.client_kwargs()["security_protocol"] == "SASL_PLAINTEXT"
        user, mech = settings.sasl_username, settings.sasl_mechanism
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        client = "SASL_PLAINTEXT" if sasl else "PLAINTEXT"
        self.props.write_text("\n".join([
            "process.roles=broker,controller", "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners={client}://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners={client}://127.0.0.1:{self.port}",
            f"listener.security.protocol.map={client}:{client},CONTROLLER:PLAINTEXT",
            f"inter.broker.listener.name={client}", "controller.listener.names=CONTROLLER",
            *([f"sasl.enabled.mechanisms={mech}", f"sasl.mechanism.inter.broker.protocol={mech}",
               f"listener.name.sasl_plaintext.{mech.lower()}.sasl.jaas.config="
               f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" '
               f'password="{password}";'] if sasl else []),
            f"log.dirs={data}", f"metadata.log.dir={data}", "num.partitions=1", "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1", "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=1", "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1", "group.initial.rebalance.delay.ms=0",
            "num.network.threads=1", "num.io.threads=2", "",
        ]))
        self.props.chmod(0o600)  # the login's password
        java = shutil.which("java") or "java"
        cp = f"{KAFKA_LIB}/*"
        scram = ["--add-scram", f"{mech}=[name={user},password={password}]"] if sasl else []
        subprocess.run([java, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                        "-c", str(self.props), *scram], check=True, capture_output=True)

    def command(self) -> list[str]:
        return [shutil.which("java") or "java", "-Xms128m", "-Xmx384m", "-XX:TieredStopAtLevel=1",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", f"{KAFKA_LIB}/*", "kafka.Kafka",
                str(self.props)]

    def ready(self) -> None:
        _wait_tcp(self.port, self.start_timeout)
        from shared.testing.kafka import wait_for_kafka
        import asyncio

        asyncio.run(wait_for_kafka(self.bootstrap))

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def _cluster_id() -> str:
    """A Kafka cluster id (16 bytes, URL-safe base64) that does not start with '-': StorageTool's
    argument parser would take `-t -Rk...` for an option (1 run in 64 failed that way)."""
    import base64

    while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cid


@contextlib.contextmanager
def _private(cls: type[PrivateServer]) -> Iterator[PrivateServer]:
    workdir = Path(tempfile.mkdtemp(prefix=f"safeguard-{cls.name}-"))
    os.chmod(workdir, 0o755)
    server = cls(workdir)
    try:
        ensure_installed()
        server.prepare()
        server.start()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.resume()
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with _private(PrivateRedis) as s:
        yield s  # type: ignore[misc]


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    with _private(PrivatePostgres) as s:
        yield s  # type: ignore[misc]


@pytest.fixture
def private_kafka() -> Iterator[PrivateKafka]:
    with _private(PrivateKafka) as s:
        yield s  # type: ignore[misc]
