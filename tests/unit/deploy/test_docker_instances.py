"""DockerInstances against a fake Docker Engine API on a unix socket (tests/unit/deploy/fake_docker.py):
the colour's container is found by its compose labels, the release file lands in the host directory
bind-mounted into it, the restart is posted, and the colour's /healthz must then say the version."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from deploy.app import AppSpec, Colour, load_app
from deploy.docker_instances import DockerInstances
from deploy.instances import InstanceError, SupervisorInstances, make_instances
from tests.unit.deploy.fake_docker import Container, FakeDocker, serve


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A unix socket path must stay under 108 bytes: pytest's tmp_path can be longer."""
    d = Path(tempfile.mkdtemp(prefix="fdock", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def demo(*, blue: int, green: int, **instances: str) -> AppSpec:
    return AppSpec(name="demo", source=Path("safeguard.toml"), schema="demo", migrations=Path("m"),
                   url="http://127.0.0.1:1",
                   colours={"blue": Colour(name="blue", url=f"http://127.0.0.1:{blue}", program="demo-blue"),
                            "green": Colour(name="green", url=f"http://127.0.0.1:{green}", program="demo-green")},
                   instances={"kind": "docker", **instances})


@pytest.fixture
async def docker(short_dir: Path) -> AsyncIterator[FakeDocker]:
    mount = short_dir / "deploy"
    mount.mkdir()
    fake = FakeDocker(containers=[
        Container(id="b" * 64, service="demo-blue", project="shop", release_source=mount),
        Container(id="g" * 64, service="demo-green", project="shop", release_source=mount),
        # the same service in another project, and a one-off `compose run` of it: never restarted
        Container(id="o" * 64, service="demo-green", project="other", release_source=short_dir / "other"),
        Container(id="r" * 64, service="demo-green", project="shop", release_source=mount, oneoff=True),
    ])
    async with serve(fake, uds=short_dir / "docker.sock") as served:
        yield served


def instances(docker: FakeDocker, short_dir: Path, **kw: object) -> DockerInstances:
    blue, green = docker.containers[0], docker.containers[1]
    return DockerInstances(demo(blue=blue.port, green=green.port), socket=short_dir / "docker.sock",
                           **kw)  # type: ignore[arg-type]


async def test_start_writes_the_release_restarts_the_colour_and_waits_for_its_version(
        docker: FakeDocker, short_dir: Path) -> None:
    await instances(docker, short_dir, project="shop").start("green", "v2")
    green = docker.containers[1]
    release = short_dir / "deploy" / "demo-green"
    assert release.read_text() == "v2\n" and release.stat().st_mode & 0o777 == 0o644
    assert (green.restarts, green.version) == (1, "v2")
    assert [c.restarts for c in docker.containers if c is not green] == [0, 0, 0]
    listing = next(path for method, path in docker.requests if path.startswith("/containers/json"))
    for label in ("com.docker.compose.service%3Ddemo-green", "com.docker.compose.project%3Dshop",
                  "com.docker.compose.oneoff%3DFalse"):
        assert label in listing
    assert ("POST", f"/containers/{green.id}/restart?t=10") in docker.requests
    assert not list(short_dir.glob("deploy/.*.tmp"))


async def test_a_release_dir_given_wins_over_the_mount(docker: FakeDocker, short_dir: Path) -> None:
    elsewhere = short_dir / "given"
    await instances(docker, short_dir, project="shop", release_dir=elsewhere, ready_timeout_s=1).start("blue", "v1")
    assert (elsewhere / "demo-blue").read_text() == "v1\n"
    assert not (short_dir / "deploy" / "demo-blue").exists()


async def test_without_a_project_two_projects_are_ambiguous(docker: FakeDocker, short_dir: Path) -> None:
    with pytest.raises(InstanceError, match="2 containers of compose service demo-green .*other, shop"):
        await instances(docker, short_dir).start("green", "v2")
    assert all(c.restarts == 0 for c in docker.containers)


async def test_no_container_of_the_project(docker: FakeDocker, short_dir: Path) -> None:
    with pytest.raises(InstanceError, match="no container of compose service demo-blue of project nope"):
        await instances(docker, short_dir, project="nope").start("blue", "v2")


async def test_a_container_without_the_release_mount(docker: FakeDocker, short_dir: Path) -> None:
    docker.containers[0].release_source = None
    with pytest.raises(InstanceError, match="no host directory bind-mounted at /data/deploy"):
        await instances(docker, short_dir, project="shop").start("blue", "v2")
    docker.containers[0].env = []
    with pytest.raises(InstanceError, match="has no DEMO_RELEASE_DIR"):
        await instances(docker, short_dir, project="shop").start("blue", "v2")
    assert docker.containers[0].restarts == 0


async def test_a_refused_restart_is_reported(docker: FakeDocker, short_dir: Path) -> None:
    docker.restart_error = "Cannot restart container: driver failed"
    with pytest.raises(InstanceError, match="restarting demo-green .*HTTP 500: Cannot restart container"):
        await instances(docker, short_dir, project="shop").start("green", "v2")


async def test_a_colour_that_never_says_the_version_times_out(docker: FakeDocker, short_dir: Path) -> None:
    docker.containers[1].release_source = short_dir / "other"  # it reads another directory: stays v1
    (short_dir / "other").mkdir()
    with pytest.raises(InstanceError, match="green did not answer /healthz with version v2 within 1s"):
        await instances(docker, short_dir, project="shop", release_dir=short_dir / "deploy",
                        ready_timeout_s=1).start("green", "v2")
    assert docker.containers[1].restarts == 1


async def test_no_docker_socket(short_dir: Path) -> None:
    gone = DockerInstances(demo(blue=1, green=2), socket=short_dir / "absent.sock", project="shop")
    with pytest.raises(InstanceError, match=r"no Docker Engine socket at .*absent\.sock"):
        await gone.start("blue", "v2")


async def test_a_dead_socket_is_an_instance_error(short_dir: Path) -> None:
    (short_dir / "dead.sock").touch()
    with pytest.raises(InstanceError, match="Docker Engine API at .*dead.sock: GET /containers/json"):
        await DockerInstances(demo(blue=1, green=2), socket=short_dir / "dead.sock").start("blue", "v2")


def test_the_app_description_picks_the_implementation(monkeypatch: pytest.MonkeyPatch, short_dir: Path) -> None:
    monkeypatch.setenv("SAFEGUARD_INSTANCES", "docker")
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "shop")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{short_dir}/d.sock")
    monkeypatch.setenv("SAFEGUARD_DEPLOY_DIR", str(short_dir))
    chosen = make_instances(load_app("demo"))
    assert isinstance(chosen, DockerInstances)
    assert (chosen.project, chosen.socket, chosen.release_dir) == ("shop", short_dir / "d.sock", short_dir)
    monkeypatch.setenv("SAFEGUARD_INSTANCES", "supervisord")
    assert isinstance(make_instances(load_app("demo")), SupervisorInstances)
    monkeypatch.setenv("SAFEGUARD_INSTANCES", "podman")
    with pytest.raises(ValueError, match="kind = 'podman': expected supervisord, docker or kubernetes"):
        make_instances(load_app("demo"))
    monkeypatch.setenv("SAFEGUARD_INSTANCES", "docker")
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
    with pytest.raises(InstanceError, match="only a unix socket"):
        make_instances(load_app("demo"))
