from services.health.app import create_app
from services.health.settings import HealthSettings
from shared.http import serve

settings = HealthSettings()
serve(create_app(settings), host=settings.host, port=settings.port)
