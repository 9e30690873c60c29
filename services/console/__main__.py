"""`python -m services.console`: run the console."""

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from shared.http import serve

settings = ConsoleSettings()
serve(create_app(settings), host=settings.host, port=settings.port)
