"""Run the demo app: `DEMO_COLOR=green PORT=8102 python -m examples.demo`."""
from examples.demo.app import create_app
from examples.demo.settings import DemoSettings
from shared.http import serve

settings = DemoSettings()
serve(create_app(settings), host=settings.host, port=settings.port)
