"""Safeguard health service. A bad config/health.yaml stops it here, naming the field."""
import sys

from services.health.app import create_app
from services.health.config import ConfigError, load_config
from services.health.settings import HealthSettings
from shared.http import serve

settings = HealthSettings()
try:
    config = load_config(settings.config_path)
except ConfigError as exc:
    print(f"health: invalid configuration: {exc}", file=sys.stderr)
    sys.exit(2)
serve(create_app(settings, config=config), host=settings.host, port=settings.port)
