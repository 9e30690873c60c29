"""The Docker executor against deploy's fake Engine API on a unix socket (the real daemon: see
tests/dockerd/check_docker_executor.py, run where dockerd answers): the compose service's container is
restarted, its new process (State.Pid) answers /healthz; containers of another project or one-off runs are
never touched; the daemon's refusal is an error that says so."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from deploy.docker_instances import DockerEngine
from services.recovery.executors import ExecutorError, Target, restart_in_turn
from services.recovery.executors.docker import DockerExecutor
from tests.unit.deploy.fake_docker import Container, FakeDocker, serve


class PidDocker(FakeDocker):
    """Inspect also says which process runs: a new PID after each restart."""

    async def _inspect(self, request: Request) -> Response:
        answer = await super()._inspect(request)
        c = self._find(request.path_params["cid"])
        if c is None or not isinstance(answer, JSONResponse):
            return answer
        body = json.loads(bytes(answer.body))
        body["State"] = {"Running": True, "Paused": c.paused, "Pid": 4000 + c.restarts, "StartedAt": f"t{c.restarts}"}
        return JSONResponse(body)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="rdock", dir="/tmp"))  # a unix socket path must stay short
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def docker(short_dir: Path) -> AsyncIterator[PidDocker]:
    fake = PidDocker(containers=[
        Container(id="b" * 64, service="demo-blue", project="shop", release_source=None),
        Container(id="g" * 64, service="demo-green", project="shop", release_source=None),
        Container(id="o" * 64, service="demo-green", project="other", release_source=None),
        Container(id="r" * 64, service="demo-green", project="shop", release_source=None, oneoff=True),
    ])
    async with serve(fake, uds=short_dir / "docker.sock") as served:
        yield served


def target(docker: FakeDocker, i: int) -> Target:
    c = docker.containers[i]
    return Target(instance=c.service, program=c.service, health_url=f"http://127.0.0.1:{c.port}/healthz")


async def test_each_container_restarts_in_turn_with_a_new_process_that_answers(docker: PidDocker,
                                                                               short_dir: Path) -> None:
    ex = DockerExecutor(engine=DockerEngine(socket=short_dir / "docker.sock", project="shop"), ready_timeout_s=5)
    done = await restart_in_turn(ex.restart, [target(docker, 0), target(docker, 1)])
    assert [c.restarts for c in docker.containers] == [1, 1, 0, 0]
    assert [r.before for r in done] == ["pid 4000 started t0"] * 2 and [r.after for r in done] == ["pid 4001 started t1"] * 2
    posts = [p for m, p in docker.requests if m == "POST"]
    assert posts == [f"/containers/{'b' * 64}/restart?t=10", f"/containers/{'g' * 64}/restart?t=10"]


async def test_a_paused_container_is_unpaused_then_restarted(docker: PidDocker, short_dir: Path) -> None:
    """A frozen container (`docker pause`, how compose-check hangs the SLA processor): the daemon refuses to restart
    it (409) until it is unpaused, so the executor unpauses it first."""
    docker.containers[0].paused = True
    ex = DockerExecutor(engine=DockerEngine(socket=short_dir / "docker.sock", project="shop"), ready_timeout_s=5)
    done = await ex.restart(target(docker, 0))
    assert docker.containers[0].restarts == 1 and not docker.containers[0].paused
    assert done.before == "pid 4000 started t0" and done.after == "pid 4001 started t1"
    posts = [p for m, p in docker.requests if m == "POST"]
    assert posts == [f"/containers/{'b' * 64}/unpause", f"/containers/{'b' * 64}/restart?t=10"]


async def test_the_daemon_refusing_the_restart_is_an_error_with_its_message(docker: PidDocker,
                                                                           short_dir: Path) -> None:
    docker.restart_error = "cannot restart: container is paused"
    ex = DockerExecutor(engine=DockerEngine(socket=short_dir / "docker.sock", project="shop"), ready_timeout_s=1)
    with pytest.raises(ExecutorError, match="HTTP 500: cannot restart: container is paused"):
        await ex.restart(target(docker, 0))


async def test_no_daemon_is_an_error_that_says_where_it_looked(short_dir: Path) -> None:
    ex = DockerExecutor(engine=DockerEngine(socket=short_dir / "none.sock"), ready_timeout_s=1)
    with pytest.raises(ExecutorError, match="no Docker Engine socket at .*none.sock"):
        await ex.restart(Target(instance="demo-blue", program="demo-blue"))


async def test_without_a_project_it_keeps_to_the_project_of_its_own_container(docker: PidDocker,
                                                                             short_dir: Path) -> None:
    docker.containers.append(Container(id="m" * 64, service="recovery", project="other", release_source=None))
    ex = DockerExecutor(engine=DockerEngine(socket=short_dir / "docker.sock"), ready_timeout_s=5,
                        own_container="m" * 64)
    await ex.restart(target(docker, 2))  # demo-green of project "other": the one beside recovery
    assert [c.restarts for c in docker.containers] == [0, 0, 1, 0, 0]


async def test_without_a_project_outside_compose_two_projects_are_an_error_that_says_so(docker: PidDocker,
                                                                                      short_dir: Path) -> None:
    ex = DockerExecutor(engine=DockerEngine(socket=short_dir / "docker.sock"), ready_timeout_s=1,
                        own_container="not-a-container")
    with pytest.raises(ExecutorError, match="2 containers of compose service demo-green .*other, shop"):
        await ex.restart(target(docker, 1))
    assert [c.restarts for c in docker.containers] == [0, 0, 0, 0]
