"""Where the protected app's database, migrations and backups are. Env `DEPLOY_*`, then `.stack/env`."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ROOT", "DeploySettings"]

ROOT = Path(__file__).resolve().parent.parent


class DeploySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEPLOY_", env_file=ROOT / ".stack" / "env", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://safeguard@127.0.0.1:5432/safeguard"),  # the password: .stack/env
        validation_alias=AliasChoices("DEPLOY_DATABASE_URL", "POSTGRES_DSN"),
    )
    schema_name: str = "demo"
    migrations: Path = ROOT / "examples" / "demo" / "migrations"
    backup_dir: Path = ROOT / ".stack" / "backups"
    state_dir: Path = Field(default=ROOT / ".stack" / "deploy", description="Deploy history (DEPLOY_STATE_DIR).")
    keep: int = Field(default=7, ge=1)

    @property
    def dsn(self) -> str:
        return self.database_url.get_secret_value()
