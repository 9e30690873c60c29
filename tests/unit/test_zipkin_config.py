"""The trace view is the same Zipkin in both stacks (docs/tracing.md): one version (the native jar's pom,
the compose image and its offline stand-in), every program's spans sent to it, bound to loopback natively.
(`make compose-check` and tests/e2e/test_trace_view.py prove them running.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_one_zipkin_version_for_the_native_jar_the_compose_image_and_its_stand_in() -> None:
    pom = (ROOT / "stack" / "zipkin" / "pom.xml").read_text()
    jar = re.search(r"<artifactId>zipkin-server</artifactId>\s*<version>([\d.]+)</version>\s*<classifier>exec<", pom)
    assert jar, "io.zipkin:zipkin-server (classifier exec) not in stack/zipkin/pom.xml"
    images = re.search(r'^ZIPKIN_VERSION="\$\{ZIPKIN_VERSION:-([\d.]+)\}"', (ROOT / "stack/images/lib.sh").read_text(), re.M)
    assert images, "ZIPKIN_VERSION not in stack/images/lib.sh"
    image = _compose()["services"]["zipkin"]["image"]
    assert (images[1], image) == (jar[1], f"openzipkin/zipkin:${{ZIPKIN_VERSION:-{jar[1]}}}")
    assert f"openzipkin/zipkin:{jar[1]}" in (ROOT / "stack/images/zipkin/Dockerfile").read_text()


def test_every_compose_program_sends_its_spans_to_zipkin() -> None:
    services = _compose()["services"]
    senders = {name for name, s in services.items()
               if name.startswith(("demo-", "flags", "health", "sla", "recovery", "notifier", "intake"))}
    assert {"flags", "sla", "demo-blue", "demo-node-blue", "demo-node-green"} <= senders
    for name in senders:
        env = services[name]["environment"]
        assert env.get("OTEL_EXPORTER_ZIPKIN_ENDPOINT") == "http://zipkin:9411/api/v2/spans", name
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env, f"{name}: no OTLP trace collector runs in compose"
    assert services["zipkin"]["ports"] == ["127.0.0.1:${ZIPKIN_PORT:-9411}:9411"]
    assert "healthcheck" in services["zipkin"]


def test_native_zipkin_listens_on_loopback_and_every_program_is_told_where() -> None:
    conf = (ROOT / "stack" / "supervisord.conf.in").read_text()
    program = re.search(r"^\[program:zipkin\]\n(.*?)\n\n", conf, re.M | re.S)
    assert program, "[program:zipkin] not in stack/supervisord.conf.in"
    assert "-Darmeria.ports[0].ip=127.0.0.1 -Darmeria.ports[0].port=@ZIPKIN_PORT@" in program[1]
    assert "autostart=false" in program[1]  # up.sh starts it last, without waiting
    up = (ROOT / "stack" / "up.sh").read_text()
    assert 'echo "OTEL_EXPORTER_ZIPKIN_ENDPOINT=http://127.0.0.1:$ZIPKIN_PORT/api/v2/spans"' in up
    assert "ctl start zipkin >/dev/null 2>&1 &" in up
