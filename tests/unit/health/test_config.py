from __future__ import annotations

from pathlib import Path

import pytest

from services.health.config import ConfigError, load_config, parse_config

REPO = Path(__file__).parents[3]


def test_the_shipped_config_is_valid_and_probes_every_30_seconds() -> None:
    config = load_config(REPO / "config" / "health.yaml")
    assert config.interval_seconds == 30
    kinds = {t.kind for t in config.targets}
    assert kinds == {"http", "tcp", "postgres", "redis", "kafka", "process"}


@pytest.mark.parametrize(("raw", "named"), [
    ({"targets": [{"name": "x", "kind": "http", "url": "ftp://x"}]}, "targets[0].url"),
    ({"targets": [{"name": "x", "kind": "tcp"}]}, "targets[0].port"),
    ({"interval_seconds": 0, "targets": [{"name": "x", "kind": "redis"}]}, "interval_seconds"),
    ({"targets": [{"name": "x", "kind": "smtp"}]}, "targets[0]"),
    ({"targets": [{"name": "x", "kind": "redis", "colour": "red"}]}, "targets[0].colour"),
    ({"targets": []}, "targets"),
    ({"targets": [{"name": "x", "kind": "redis"}, {"name": "x", "kind": "kafka"}]}, "duplicate target name"),
])
def test_bad_config_names_the_field(raw: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(raw, source="health.yaml", env={})
    assert str(err.value).startswith("health.yaml: ") and named in str(err.value)


def test_env_expansion_with_defaults() -> None:
    raw = {"targets": [{"name": "f", "kind": "http", "url": "http://127.0.0.1:${FLAGS_PORT:-8001}/healthz"}]}
    assert parse_config(raw, env={})  .targets[0].url.endswith(":8001/healthz")  # type: ignore[union-attr]
    assert parse_config(raw, env={"FLAGS_PORT": "9"}).targets[0].url == "http://127.0.0.1:9/healthz"  # type: ignore[union-attr]


def test_unreadable_or_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_main_exits_with_the_message(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  - {name: x, kind: http, url: nope}\n")
    proc = subprocess.run([sys.executable, "-m", "services.health"], cwd=REPO, capture_output=True, text=True,
                          env={"HEALTH_CONFIG_PATH": str(bad), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 2
    assert "targets[0].url" in proc.stderr
