"""`python -m services.health`: run the service (a bad setting or config/health.yaml exits 2 naming the field)."""

from services.health.app import create_app
from services.health.settings import HealthSettings
from shared.http import run_service

run_service(create_app, HealthSettings)
