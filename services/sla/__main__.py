"""Safeguard SLA stream processor (faust-streaming)."""
import sys

import faust

from services.sla.app import create_app
from services.sla.policy import PolicyError
from services.sla.settings import SlaSettings
from shared.telemetry import setup_telemetry

settings = SlaSettings()
setup_telemetry("sla", settings.telemetry)
try:
    sla = create_app(settings)
except PolicyError as exc:
    print(f"sla: {exc}", file=sys.stderr)
    sys.exit(2)
faust.Worker(sla.app, loglevel="info").execute_from_commandline()
