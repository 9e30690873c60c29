"""`python -m services.sla`: run the SLA stream processor, a Faust worker (a bad setting or policy file
exits 2 naming the field, as every service does: `shared.startup`)."""

import faust

from services.sla.app import SlaApp, create_app
from services.sla.settings import SlaSettings
from shared.startup import build_or_exit
from shared.telemetry import setup_telemetry


def build() -> SlaApp:
    settings = SlaSettings()
    setup_telemetry("sla", settings.telemetry)
    return create_app(settings)


faust.Worker(build_or_exit(build, service="sla").app, loglevel="info").execute_from_commandline()
