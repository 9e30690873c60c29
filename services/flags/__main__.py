from services.flags.app import create_app
from services.flags.settings import FlagsSettings
from shared.http import serve

settings = FlagsSettings()
serve(create_app(settings), host=settings.host, port=settings.port)
