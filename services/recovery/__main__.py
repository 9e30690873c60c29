from services.recovery.app import create_app
from services.recovery.settings import RecoverySettings
from shared.http import serve

settings = RecoverySettings()
serve(create_app(settings), host=settings.host, port=settings.port)
