"""`python -m services.intake`: run the service."""

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from shared.http import serve

settings = IntakeSettings()
serve(create_app(settings), host=settings.host, port=settings.port)
