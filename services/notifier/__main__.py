from services.notifier.app import create_app
from services.notifier.settings import NotifierSettings
from shared.http import serve

settings = NotifierSettings()
serve(create_app(settings), host=settings.host, port=settings.port)
