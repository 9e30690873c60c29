"""`python -m services.intake`: run the service (a bad setting exits 2 naming the field)."""

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from shared.http import run_service

run_service(create_app, IntakeSettings)
