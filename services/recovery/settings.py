from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.recovery.executors.base import Target
from shared.auth import AuthSettings
from shared.settings import ServiceSettings

__all__ = ["RecoverySettings", "DEFAULT_POLICY", "ExecutorName"]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = ROOT / "config" / "recovery.yaml"
ExecutorName = Literal["sdk", "supervisord", "docker", "kubernetes"]


class RecoverySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECOVERY_", extra="ignore")
    port: int = 8004
    auth: AuthSettings = Field(default_factory=AuthSettings)
    policy_file: Path = Field(default=DEFAULT_POLICY, description="The YAML policy (RECOVERY_POLICY_FILE).")
    flags_url: str = Field(default="http://127.0.0.1:8001", description="Where the flags API (and OFREP) answers.")
    db_schema: str = Field(default="recovery", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    group_id: str = "safeguard-recovery"
    tick_interval_s: float = Field(default=1.0, gt=0, description="How often verify windows are checked.")
    # --- how a process is restarted (services/recovery/executors, docs/recovery-executors.md) ---
    executor: ExecutorName = Field(default="sdk", description="RECOVERY_EXECUTOR: supervisord, docker, kubernetes, "
                                                              "or sdk (the app's own clean exit)")
    targets: dict[str, list[Target]] = Field(
        default_factory=dict, description='RECOVERY_TARGETS (JSON): {"demo": [{"instance": "demo-blue", "program": '
                                          '"safeguard:demo-blue", "health_url": "http://127.0.0.1:8101/healthz"}]}')
    supervisor_socket: Path = ROOT / ".stack" / "run" / "supervisor.sock"
    docker_socket: Path | None = Field(default=None, description="default: DOCKER_HOST, else /var/run/docker.sock")
    compose_project: str | None = None
    kube_namespace: str = "default"
    kubeconfig: str | None = Field(default=None, description="a path, `in-cluster`, or None (~/.kube/config)")
    kube_context: str | None = None
    restart_ready_timeout_s: float = Field(default=60.0, gt=0, description="How long a restarted instance has to answer.")
    # --- controls and verification ---
    dry_run: bool = Field(default=False, description="RECOVERY_DRY_RUN: decide and record 'would ...', act on nothing.")
    verify_timeout_s: float = Field(default=60.0, gt=0, description="How long an action's effect has to show.")
    verify_effects: bool = Field(default=True, description="Watch health.checks and OFREP for each action's effect.")
