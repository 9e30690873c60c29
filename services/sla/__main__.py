"""`python -m services.sla`: run the SLA stream processor, a Faust worker (a bad setting or policy file
exits 2 naming the field, as every service does: `shared.startup`)."""

import logging

import faust

from services.sla.app import SlaApp, create_app
from services.sla.settings import SlaSettings
from shared.logging import quiet_repeats
from shared.startup import build_or_exit
from shared.telemetry import setup_telemetry


def build() -> SlaApp:
    settings = SlaSettings()
    setup_telemetry("sla", settings.telemetry)
    return create_app(settings)


class Worker(faust.Worker):
    """Faust's worker, whose log handlers hold back repeats as every service's do (`shared.logging`)."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        for handler in logger.handlers:
            quiet_repeats(handler)


if __name__ == "__main__":
    Worker(build_or_exit(build, service="sla").app, loglevel="info").execute_from_commandline()
