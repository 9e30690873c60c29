"""`shared.startup` / `shared.http.run_service`: a bad setting or policy stops a service with exit 2,
one line per bad field; `shared.http.expose` is where app state is set."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.http import expose
from shared.policy import PolicyError, Strict, load_yaml
from shared.startup import BAD_CONFIG, build_or_exit, field_lines, where


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STARTUP_TEST_")
    port: int = 1
    ratio: float = Field(default=0.5, ge=0, le=1)


class _Policy(Strict):
    cooldown: int = Field(default=1, ge=0)


def test_where_reads_like_the_yaml() -> None:
    assert where(("targets", 0, "url")) == "targets[0].url"
    assert where(("a", "b")) == "a.b"
    assert where(()) == "(top level)"


def test_field_lines_one_per_field_without_the_value() -> None:
    with pytest.raises(ValidationError) as err:
        _Settings(port="secret-ish", ratio=7)  # type: ignore[arg-type]
    lines = field_lines(err.value)
    assert len(lines) == 2
    assert lines[0].startswith("port: ") and lines[1].startswith("ratio: ")
    assert not any("secret-ish" in line for line in lines)


def test_a_bad_setting_exits_2_naming_each_field(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STARTUP_TEST_PORT", "eighty")
    monkeypatch.setenv("STARTUP_TEST_RATIO", "2")
    with pytest.raises(SystemExit) as exited:
        build_or_exit(_Settings, service="demo")
    assert exited.value.code == BAD_CONFIG == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0:2] for line in lines] == [["demo", " bad setting port"], ["demo", " bad setting ratio"]]


def test_a_bad_policy_exits_2_with_the_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("cooldown: -1\n")
    with pytest.raises(SystemExit) as exited:
        build_or_exit(lambda: load_yaml(bad, _Policy), service="demo")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("demo: bad policy: ") and str(bad) in err and "cooldown" in err


def test_a_good_build_is_returned_and_other_errors_are_not_hidden() -> None:
    assert build_or_exit(lambda: 42, service="demo") == 42
    with pytest.raises(KeyError):
        build_or_exit(lambda: {}["x"], service="demo")
    assert issubclass(PolicyError, ValueError)


def test_expose_sets_app_state_attributes() -> None:
    app = FastAPI()
    marker = object()
    expose(app, thing=marker, port=5)
    assert app.state.thing is marker and app.state.port == 5
