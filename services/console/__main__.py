"""`python -m services.console`: run the console (a bad setting exits 2 naming the field)."""

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from shared.http import run_service

run_service(create_app, ConsoleSettings)
