"""The Docker executor against a REAL Docker daemon and the compose stack (`docker compose up -d`).

Not part of `make test` (the native CI has no dockerd; the file name keeps pytest from collecting it):
run it where the compose stack runs, e.g. after `make compose-check` brought it up or by hand:

    COMPOSE_PROJECT_NAME=safeguard .venv/bin/python -m pytest -q tests/dockerd/check_docker_executor.py

`make compose-check` (check 5b) drives the whole path instead: a memory_high makes the recovery container
restart demo-green through the mounted socket. No daemon is a failure here, never a skip. It restarts the compose service `demo-green` (CHECK_SERVICE)
through the Engine API and checks that a new process answers its published /healthz (CHECK_HEALTH_URL).
"""

from __future__ import annotations

import os

import pytest

from deploy.docker_instances import DockerEngine, docker_socket
from services.recovery.executors import Target
from services.recovery.executors.docker import DockerExecutor


async def test_a_compose_container_restarts_with_a_new_process_that_answers() -> None:
    engine = DockerEngine(socket=docker_socket(), project=os.environ.get("COMPOSE_PROJECT_NAME"))
    r = await engine._api("GET", "/_ping")  # raises with where it looked when no daemon answers
    if r.status_code != 200:
        pytest.fail(f"the Docker daemon at {engine.socket} answered {r.status_code} to /_ping")
    service = os.environ.get("CHECK_SERVICE", "demo-green")
    url = os.environ.get("CHECK_HEALTH_URL", f"http://127.0.0.1:{os.environ.get('DEMO_GREEN_PORT', '8102')}/healthz")
    done = await DockerExecutor(engine=engine, ready_timeout_s=90).restart(
        Target(instance=service, program=service, health_url=url))
    assert done.before != done.after
    print(f"\ndocker: {done.describe()}")
