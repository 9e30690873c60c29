"""docker-compose.yml and what reads its names agree: every published port moves with compose-check's
offset, every HAProxy server and health target under compose names a compose service, and the Node
demo's image runs the same command as the native stack. (`make compose-check` proves them running.)"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _published() -> dict[str, int]:
    """`${NAME:-default}` of every published host port in docker-compose.yml."""
    found: dict[str, int] = {}
    for service in _compose()["services"].values():
        for spec in service.get("ports", []):
            m = re.fullmatch(r"127\.0\.0\.1:\$\{(\w+):-(\d+)\}:\d+", spec)
            assert m, f"published port {spec!r}: want 127.0.0.1:${{NAME:-default}}:<port>"
            found[m[1]] = int(m[2])
    return found


def _check_ports() -> dict[str, int]:
    text = (ROOT / "stack" / "compose-check.sh").read_text()
    table = re.search(r"declare -A DEFAULT_PORTS=\((.*?)\n\)", text, re.S)
    assert table, "DEFAULT_PORTS not found in stack/compose-check.sh"
    return {k: int(v) for k, v in re.findall(r"\[(\w+)\]=(\d+)", table[1])}


def test_every_published_port_moves_with_the_compose_check_offset() -> None:
    published, moved = _published(), _check_ports()
    assert {"NODE_DEMO_PORT", "NODE_BLUE_PORT", "NODE_GREEN_PORT", "INTAKE_PORT"} <= published.keys()
    missing = {k: v for k, v in published.items() if moved.get(k) != v}
    assert not missing, f"published in docker-compose.yml but not in compose-check's DEFAULT_PORTS (same default): {missing}"


def test_haproxy_compose_servers_are_compose_services() -> None:
    services = set(_compose()["services"])
    cfg = (ROOT / "stack" / "haproxy.compose.cfg").read_text()
    hosts = set(re.findall(r"^\s*server\s+\S+\s+([a-z][\w-]*):\d+", cfg, re.M))
    assert {"demo-node-blue", "demo-node-green", "intake"} <= hosts
    assert hosts <= services, f"HAProxy servers with no compose service: {sorted(hosts - services)}"


def test_compose_health_targets_are_compose_services() -> None:
    services = set(_compose()["services"])
    targets = yaml.safe_load((ROOT / "stack" / "health.compose.yaml").read_text())["targets"]
    hosts = {re.match(r"https?://([\w-]+):", t["url"])[1] for t in targets if t["kind"] == "http"}  # type: ignore[index]
    assert {"demo-node-blue", "demo-node-green", "haproxy"} <= hosts
    assert hosts <= services, f"health targets with no compose service: {sorted(hosts - services)}"
    native = yaml.safe_load((ROOT / "config" / "health.yaml").read_text())["targets"]
    want = {t["name"] for t in native if t["kind"] != "process"}
    assert want <= {t["name"] for t in targets}, f"native targets not probed under compose: {want - {t['name'] for t in targets}}"


def test_node_image_runs_the_native_command_with_the_flags_sync_and_otlp_of_compose() -> None:
    programs = (ROOT / "stack" / "programs.conf").read_text()
    native = re.search(r"^demo-node-blue\s+\S+\s+\S+\s+env DEMO_COLOR=blue (.+)$", programs, re.M)
    assert native, "demo-node-blue not in stack/programs.conf"
    dockerfile = (ROOT / "examples" / "demo-node" / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd and " ".join(json.loads(cmd[1])) == native[1]
    assert "USER safeguard" in dockerfile and "HEALTHCHECK" in dockerfile
    services = _compose()["services"]
    for colour, port in (("blue", "8201"), ("green", "8202")):
        env = services[f"demo-node-{colour}"]["environment"]
        assert (env["DEMO_COLOR"], env["PORT"], env["FLAGS_SYNC_HOST"]) == (colour, port, "haproxy")  # both instances
        assert env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] == "http://haproxy:4318/v1/metrics"
        assert "secrets-app:/run/secrets:ro" in services[f"demo-node-{colour}"]["volumes"]


def test_the_compose_front_door_is_rendered_from_the_native_template() -> None:
    """stack/haproxy.compose.cfg is stack/haproxy.cfg.in with compose's addresses: the two cannot drift."""
    run = subprocess.run(["bash", str(ROOT / "stack" / "gen-compose-haproxy.sh"), "--check"], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
