"""`python -m services.notifier`: run the service (a bad setting or policy file exits 2 naming the field)."""

from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from shared.http import run_service

run_service(create_app, NotifierSettings)
