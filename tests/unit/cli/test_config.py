"""Where the CLI finds the front door and the admin token: environment, .stack/env, .stack/admin-token."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.client import Front
from cli.config import DEFAULT_FRONT_URL, find_home, load_config, read_env_file
from cli.errors import CliError, Exit


def _stack(home: Path, *, env: str | None = None, token: str | None = None) -> Path:
    (home / ".stack").mkdir(parents=True, exist_ok=True)
    if env is not None:
        (home / ".stack" / "env").write_text(env)
    if token is not None:
        (home / ".stack" / "admin-token").write_text(token)
    return home


def test_env_file_lines(tmp_path: Path) -> None:
    f = tmp_path / "env"
    f.write_text("# made by up.sh\nA=1\nexport B='two words'\nC=\"x=y\"\n\nnot a pair\nD=\n")
    assert read_env_file(f) == {"A": "1", "B": "two words", "C": "x=y", "D": ""}
    assert read_env_file(tmp_path / "missing") == {}


def test_token_file_when_nothing_else(tmp_path: Path) -> None:
    home = _stack(tmp_path, token="from-file\n")
    cfg = load_config(environ={"SAFEGUARD_HOME": str(home)}, cwd=Path("/"))
    assert (cfg.token, cfg.front_url, cfg.home) == ("from-file", DEFAULT_FRONT_URL, home)


def test_stack_env_beats_token_file(tmp_path: Path) -> None:
    home = _stack(tmp_path, env="SAFEGUARD_ADMIN_TOKEN=from-env-file\nSAFEGUARD_FRONT_URL=http://127.0.0.1:3999/\n",
                  token="from-file")
    cfg = load_config(environ={"SAFEGUARD_HOME": str(home)}, cwd=Path("/"))
    assert (cfg.token, cfg.front_url) == ("from-env-file", "http://127.0.0.1:3999")


def test_environment_beats_files(tmp_path: Path) -> None:
    home = _stack(tmp_path, env="SAFEGUARD_ADMIN_TOKEN=a\nSAFEGUARD_FRONT_URL=http://a\n", token="b")
    cfg = load_config(environ={"SAFEGUARD_HOME": str(home), "SAFEGUARD_ADMIN_TOKEN": "c",
                               "SAFEGUARD_FRONT_URL": "http://c:1"}, cwd=Path("/"))
    assert (cfg.token, cfg.front_url) == ("c", "http://c:1")


def test_home_is_the_nearest_checkout_above_the_working_directory(tmp_path: Path) -> None:
    home = _stack(tmp_path / "repo", token="t")
    deep = home / "services" / "flags"
    deep.mkdir(parents=True)
    assert find_home(environ={}, cwd=deep) == home
    assert load_config(environ={}, cwd=deep).token == "t"


def test_safeguard_home_beats_the_working_directory(tmp_path: Path) -> None:
    here, there = _stack(tmp_path / "here", token="here"), _stack(tmp_path / "there", token="there")
    assert load_config(environ={"SAFEGUARD_HOME": str(there)}, cwd=here).token == "there"


def test_no_token_anywhere_is_a_usage_error(tmp_path: Path) -> None:
    home = _stack(tmp_path, token="   \n")
    cfg = load_config(environ={"SAFEGUARD_HOME": str(home)}, cwd=Path("/"))
    assert cfg.token is None
    with pytest.raises(CliError) as err:
        Front(cfg).token()
    assert err.value.code == Exit.USAGE and "SAFEGUARD_ADMIN_TOKEN" in str(err.value)


def test_command_without_token_exits_2_before_any_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import app

    monkeypatch.delenv("SAFEGUARD_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("SAFEGUARD_HOME", str(_stack(tmp_path)))
    monkeypatch.setenv("SAFEGUARD_FRONT_URL", "http://127.0.0.1:9")  # nothing listens: a request would exit 3
    result = CliRunner().invoke(app, ["flags", "kill", "some-flag"])
    assert result.exit_code == 2, result.output
    assert "no admin token" in result.output


def test_deploy_sub_apps_are_mounted_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import types

    import typer

    db_app, backup_app = typer.Typer(), typer.Typer()
    db_app.command("lint")(lambda: print("linted"))
    backup_app.command("backup")(lambda: print("backed up"))
    backup_app.command("restore")(lambda: print("restored"))
    fake = types.ModuleType("deploy.cli")
    fake.db_app, fake.backup_app = db_app, backup_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "deploy.cli", fake)
    import cli.main

    try:
        app = importlib.reload(cli.main).app
        runner = CliRunner()
        assert runner.invoke(app, ["db", "lint"]).output.strip() == "linted"
        assert runner.invoke(app, ["backup"]).output.strip() == "backed up"
        assert runner.invoke(app, ["restore"]).output.strip() == "restored"
    finally:
        monkeypatch.delitem(sys.modules, "deploy.cli")
        importlib.reload(cli.main)
