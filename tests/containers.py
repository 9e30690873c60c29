"""`SAFEGUARD_STACK=containers`: Kafka, PostgreSQL and Redis for the tests, from testcontainers.

A pytest plugin (`pytest -p tests.containers`). With `SAFEGUARD_STACK=containers` it starts the
three services from the same images `docker-compose.yml` uses (`apache/kafka:4.1.1`,
`postgres:15`, `redis:7.0`; built as offline stand-ins by `stack/images/build.sh` when neither
present nor pullable) before any test runs, and exports `KAFKA_BOOTSTRAP_SERVERS`,
`POSTGRES_DSN` and `REDIS_URL`, which the fixtures of `tests/conftest.py` read. Without that
setting it does nothing.

Loopback only: ports are published on 127.0.0.1 and reached there
(`TESTCONTAINERS_CONNECTION_MODE=docker_host`, `TC_HOST=127.0.0.1`), never via a bridge address.
Ryuk is disabled (its image cannot be had offline): containers carry our labels and are removed
at the end of the session, at exit, and -- for leftovers of a killed run -- at the next start.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Stack", "start_stack"]

ROOT = Path(__file__).resolve().parent.parent
LABEL = "dev.safeguard.tests"
LABEL_PID = "dev.safeguard.tests.pid"

KAFKA_IMAGE = os.environ.get("KAFKA_IMAGE", "apache/kafka:4.1.1")
POSTGRES_IMAGE = os.environ.get("POSTGRES_IMAGE", "postgres:15")
REDIS_IMAGE = os.environ.get("REDIS_IMAGE", "redis:7.0")
PG_USER = PG_PASSWORD = PG_DB = "safeguard"
STARTUP_TIMEOUT_S = int(os.environ.get("SAFEGUARD_CONTAINERS_TIMEOUT", "120"))


def _configure_testcontainers() -> None:
    # set before testcontainers reads its config (at import)
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    os.environ.setdefault("TC_HOST", "127.0.0.1")


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """The running containers and the endpoints the fixtures read."""

    containers: list[Any]
    kafka_bootstrap: str
    postgres_dsn: str
    redis_url: str

    def environ(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "POSTGRES_DSN": self.postgres_dsn,
            "REDIS_URL": self.redis_url,
        }

    def stop(self) -> None:
        while self.containers:
            self.containers.pop().stop(force=True, delete_volume=True)


def _remove_leftovers() -> None:
    """Removes test containers of earlier runs whose pytest process is gone."""
    import docker

    client = docker.from_env()
    try:
        for container in client.containers.list(all=True, filters={"label": LABEL}):
            pid = int(container.labels.get(LABEL_PID, "0"))
            if pid and _alive(pid):
                continue
            container.remove(force=True, v=True)
    finally:
        client.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _docker_answers() -> bool:
    import docker

    try:
        client = docker.from_env()
    except docker.errors.DockerException:
        return False
    try:
        client.ping()
    except docker.errors.DockerException:
        return False
    finally:
        client.close()
    return True


_started_dockerd = False


def _ensure_images() -> None:
    """Makes the images (stack/images/build.sh: present > pulled > stand-in); starts dockerd when
    no daemon answers (build.sh does, recording it; `_stop` stops it again)."""
    global _started_dockerd
    import docker

    if not _docker_answers():
        _started_dockerd = True
        subprocess.run([str(ROOT / "stack/images/build.sh"), "kafka", "postgres", "redis"], check=True)
        return
    client = docker.from_env()
    try:
        missing = [i for i in (KAFKA_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE) if not _has_image(client, i)]
    finally:
        client.close()
    if missing:
        names = {KAFKA_IMAGE: "kafka", POSTGRES_IMAGE: "postgres", REDIS_IMAGE: "redis"}
        subprocess.run([str(ROOT / "stack/images/build.sh"), *(names[i] for i in missing)], check=True)


def _stop_dockerd_if_ours() -> None:
    global _started_dockerd
    if _started_dockerd:
        _started_dockerd = False
        subprocess.run(["bash", "-c", '. "$1/stack/images/lib.sh" && stop_docker_if_ours', "_", str(ROOT)], check=False)


def _has_image(client: Any, image: str) -> bool:
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def _container(image: str, session: str) -> Any:
    from testcontainers.core.container import DockerContainer

    return DockerContainer(image).with_kwargs(labels={LABEL: session, LABEL_PID: str(os.getpid())})


def _publish(container: Any, port: int, host_port: int | None = None) -> Any:
    # docker-py takes (host ip, host port): bind on loopback only, random port unless given
    container.ports[f"{port}/tcp"] = ("127.0.0.1", host_port)
    return container


def _start_kafka(session: str) -> tuple[Any, str]:
    from testcontainers.core.wait_strategies import ExecWaitStrategy

    host_port = _free_loopback_port()  # the advertised listener must name it before start
    kafka = _publish(_container(KAFKA_IMAGE, session), 19092, host_port).with_envs(
        CLUSTER_ID=uuid.uuid4().hex[:22],
        KAFKA_NODE_ID="1",
        KAFKA_PROCESS_ROLES="broker,controller",
        KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
        KAFKA_LISTENERS="PLAINTEXT://:9092,CONTROLLER://:9093,HOST://:19092",
        KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://localhost:9092,HOST://127.0.0.1:{host_port}",
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,HOST:PLAINTEXT",
        KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
        KAFKA_INTER_BROKER_LISTENER_NAME="PLAINTEXT",
        KAFKA_NUM_PARTITIONS="3",
        KAFKA_AUTO_CREATE_TOPICS_ENABLE="true",
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
        KAFKA_HEAP_OPTS="-Xmx512m -Xms256m",
    ).waiting_for(
        ExecWaitStrategy(["/opt/kafka/bin/kafka-broker-api-versions.sh", "--bootstrap-server", "localhost:9092"])
        .with_startup_timeout(STARTUP_TIMEOUT_S).with_poll_interval(1.0)
    )
    kafka.start()
    return kafka, f"127.0.0.1:{host_port}"


def _start_postgres(session: str) -> tuple[Any, str]:
    from testcontainers.core.wait_strategies import ExecWaitStrategy

    pg = _publish(_container(POSTGRES_IMAGE, session), 5432).with_envs(
        POSTGRES_USER=PG_USER, POSTGRES_PASSWORD=PG_PASSWORD, POSTGRES_DB=PG_DB,
    ).waiting_for(
        # over TCP: the init-time server listens on the unix socket only
        ExecWaitStrategy(["pg_isready", "-h", "127.0.0.1", "-U", PG_USER, "-d", PG_DB])
        .with_startup_timeout(STARTUP_TIMEOUT_S).with_poll_interval(0.5)
    )
    pg.start()
    port = pg.get_exposed_port(5432)
    return pg, f"postgresql://{PG_USER}:{PG_PASSWORD}@{pg.get_container_host_ip()}:{port}/{PG_DB}"


def _start_redis(session: str) -> tuple[Any, str]:
    from testcontainers.core.wait_strategies import ExecWaitStrategy

    redis = _publish(_container(REDIS_IMAGE, session), 6379).waiting_for(
        ExecWaitStrategy(["redis-cli", "ping"]).with_startup_timeout(STARTUP_TIMEOUT_S).with_poll_interval(0.5)
    )
    redis.start()
    return redis, f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"


def start_stack() -> Stack:
    """Starts Kafka, PostgreSQL and Redis; stops what started if one of them fails."""
    _configure_testcontainers()
    _ensure_images()
    _remove_leftovers()
    session = uuid.uuid4().hex[:12]
    stack = Stack(containers=[], kafka_bootstrap="", postgres_dsn="", redis_url="")
    try:
        container, stack.kafka_bootstrap = _start_kafka(session)
        stack.containers.append(container)
        container, stack.postgres_dsn = _start_postgres(session)
        stack.containers.append(container)
        container, stack.redis_url = _start_redis(session)
        stack.containers.append(container)
    except BaseException:
        stack.stop()
        raise
    for host in (stack.kafka_bootstrap, stack.postgres_dsn, stack.redis_url):
        assert "127.0.0.1" in host, f"not a loopback endpoint: {host}"
    return stack


_STACK: Stack | None = None


def _stop() -> None:
    global _STACK
    try:
        if _STACK is not None:
            stack, _STACK = _STACK, None
            stack.stop()
    finally:
        _stop_dockerd_if_ours()


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through pytest_unconfigure / atexit


def pytest_configure(config: pytest.Config) -> None:
    global _STACK
    if os.environ.get("SAFEGUARD_STACK") != "containers" or _STACK is not None:
        return
    started = time.monotonic()
    atexit.register(_stop)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _STACK = start_stack()
    except Exception as exc:  # noqa: BLE001 -- reported as a usage error that names the cause
        _stop_dockerd_if_ours()
        raise pytest.UsageError(f"SAFEGUARD_STACK=containers: could not start the containers: {exc!r}") from exc
    os.environ.update(_STACK.environ())
    config.stash[_started_key] = time.monotonic() - started


_started_key = pytest.StashKey[float]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    if _STACK is None:
        return []
    took = config.stash.get(_started_key, 0.0)
    return [f"SAFEGUARD_STACK=containers ({took:.1f}s): kafka {_STACK.kafka_bootstrap}, "
            f"postgres {_STACK.postgres_dsn.rsplit('@', 1)[-1]}, redis {_STACK.redis_url}"]


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop()
