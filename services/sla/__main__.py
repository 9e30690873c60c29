import faust

from services.sla.app import create_app
from services.sla.settings import SlaSettings
from shared.telemetry import setup_telemetry

settings = SlaSettings()
setup_telemetry("sla", settings.telemetry)
app = create_app(settings)
faust.Worker(app, loglevel="info").execute_from_commandline()
