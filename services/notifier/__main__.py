"""`python -m services.notifier`: run the service (a bad policy file stops it with the field named)."""

import sys

from services.notifier.app import create_app
from services.notifier.policy import PolicyError
from services.notifier.settings import NotifierSettings
from shared.http import serve

settings = NotifierSettings()
try:
    app = create_app(settings)
except PolicyError as exc:
    sys.exit(f"notifier: bad policy: {exc}")
serve(app, host=settings.host, port=settings.port)
