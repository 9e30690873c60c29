"""stack/run.sh, the launcher supervisord runs each Safeguard program through: its environment
and its Kafka login, run for real from a copy in a throwaway checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.stack._load import ROOT, load_stack_module

sc = load_stack_module("supervisor_conf")
PRINT_ENV = [sys.executable, "-c", "import json, os; print(json.dumps({**os.environ, 'CWD': os.getcwd()}))"]


def _principals() -> list[str]:
    out = subprocess.run(["bash", "-c", '. stack/lib.sh && echo "$KAFKA_PRINCIPALS"'], cwd=ROOT,
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.split()


@dataclass(frozen=True)
class Checkout:
    root: Path

    def run(self, name: str, port_var: str, *command: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.root)}  # nothing of the test's own env
        return subprocess.run(["bash", str(self.root / "stack" / "run.sh"), name, port_var, *command],
                              env=env, cwd="/", capture_output=True, text=True, timeout=30)

    def env_of(self, name: str, port_var: str = "FLAGS_PORT") -> dict[str, str]:
        done = self.run(name, port_var, *PRINT_ENV)
        assert done.returncode == 0, done.stderr
        env: dict[str, str] = json.loads(done.stdout)
        return env

    def secret(self, principal: str) -> str:
        return (self.root / ".stack" / "secrets" / f"kafka-{principal}").read_text()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Checkout:
    root = tmp_path_factory.mktemp("checkout").resolve()
    (root / "stack").mkdir()
    shutil.copy(ROOT / "stack" / "run.sh", root / "stack" / "run.sh")
    secrets = root / ".stack" / "secrets"
    secrets.mkdir(parents=True)
    for principal in _principals():
        (secrets / f"kafka-{principal}").write_text(f"pw-of-{principal}")
    ports = {p.port_var: str(9000 + i) for i, p in enumerate(sc.parse_programs(text=(ROOT / "stack" / "programs.conf").read_text()))}
    env = {"KAFKA_SASL_USERNAME": "admin", "KAFKA_SASL_PASSWORD": "pw-of-admin",
           "SAFEGUARD_SECRETS_DIR": str(secrets), **ports}
    (root / ".stack" / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    (root / ".stack" / "recovery.env").write_text("RECOVERY_EXECUTOR=supervisord\n")
    return Checkout(root=root)


@pytest.mark.parametrize(("program", "principal"), [
    ("flags", "flags"), ("flags-2", "flags"), ("flags-3", "flags"), ("health", "health"),
    ("recovery", "recovery"), ("demo-blue", "app"), ("demo-node-green", "app"), ("intake", "intake"),
])
def test_a_program_logs_in_to_kafka_as_its_principal(checkout: Checkout, program: str, principal: str) -> None:
    env = checkout.env_of(program)
    assert (env["KAFKA_SASL_USERNAME"], env["KAFKA_SASL_PASSWORD"]) == (principal, checkout.secret(principal))


def test_every_flags_instance_reads_the_flags_secret_with_no_file_of_its_own(checkout: Checkout) -> None:
    assert not (checkout.root / ".stack" / "secrets" / "kafka-flags-2").exists()
    assert checkout.env_of("flags-2")["KAFKA_SASL_PASSWORD"] == "pw-of-flags"


def test_the_console_has_no_kafka_login_not_even_the_admins(checkout: Checkout) -> None:
    env = checkout.env_of("console")
    assert "KAFKA_SASL_USERNAME" not in env and "KAFKA_SASL_PASSWORD" not in env


def test_the_environment_is_stack_env_plus_port_program_and_the_repo_root(checkout: Checkout) -> None:
    env = checkout.env_of("flags-2", "FLAGS_PORT_2")
    stack_env = dict(line.split("=", 1) for line in (checkout.root / ".stack" / "env").read_text().splitlines())
    assert env["PORT"] == stack_env["FLAGS_PORT_2"]
    assert env["SAFEGUARD_PROGRAM"] == "flags-2"
    assert env["SAFEGUARD_SECRETS_DIR"] == stack_env["SAFEGUARD_SECRETS_DIR"]
    assert env["CWD"] == str(checkout.root)
    assert env["PATH"].startswith(f"{checkout.root}/.venv/bin:")
    assert env["PYTHONUNBUFFERED"] == "1"


def test_only_recovery_loads_the_supervisord_executor(checkout: Checkout) -> None:
    assert checkout.env_of("recovery")["RECOVERY_EXECUTOR"] == "supervisord"
    assert "RECOVERY_EXECUTOR" not in checkout.env_of("flags")


def test_every_program_of_programs_conf_has_its_principals_credentials(checkout: Checkout) -> None:
    """A program added to programs.conf whose principal is missing from KAFKA_PRINCIPALS (stack/lib.sh)
    would exit 78 under supervisord: caught here instead."""
    principals = set(_principals())
    for program in sc.parse_programs(text=(ROOT / "stack" / "programs.conf").read_text()):
        env = checkout.env_of(program.name, program.port_var)
        assert env.get("KAFKA_SASL_USERNAME", "admin") in principals, program.name
        assert env["PORT"].isdigit(), program.name


def test_a_principal_without_credentials_stops_with_78_and_says_what_to_add(checkout: Checkout) -> None:
    done = checkout.run("billing", "FLAGS_PORT", "true")
    assert done.returncode == 78
    assert "no Kafka credentials for billing" in done.stderr and "KAFKA_PRINCIPALS" in done.stderr
    assert "pw-of" not in done.stderr + done.stdout
