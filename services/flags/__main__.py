"""`python -m services.flags [--instance N]`: instance 1 is configured by FLAGS_* (its flagd sync on
FLAGS_SYNC_PORT_1 when set); a further instance (N > 1, the native stack's `flags-2`) listens on $PORT,
serves flagd sync on FLAGS_SYNC_PORT_<N> (else any free port) and keeps its own kill journal
(`<journal>-<N>`).

The shared recipe (`shared.http.run_service`) with the instance's settings: a bad setting exits 2
naming the field."""

import argparse
import os
from pathlib import Path

from services.flags.app import create_app
from services.flags.settings import FlagsSettings
from shared.http import run_service


def instance_settings(instance: int) -> FlagsSettings:
    settings = FlagsSettings()
    if instance <= 1:  # FLAGS_SYNC_PORT_1: its own port when a proxy serves FLAGS_SYNC_PORT (the native stack)
        own = os.environ.get("FLAGS_SYNC_PORT_1")
        return settings if own is None else settings.model_copy(update={"sync_port": int(own)})
    journal = Path(settings.journal_path)
    return settings.model_copy(update={
        "port": int(os.environ.get("PORT", settings.port + instance - 1)),
        "sync_port": int(os.environ.get(f"FLAGS_SYNC_PORT_{instance}", "0")),
        "journal_path": str(journal.with_name(f"{journal.stem}-{instance}{journal.suffix}"))})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.flags")
    parser.add_argument("--instance", type=int, default=1, help="which instance of the flags service (1, 2, ...)")
    instance = parser.parse_args().instance

    run_service(create_app, lambda: instance_settings(instance), service="flags")


if __name__ == "__main__":
    main()
