"""The intake: OpenTelemetry metrics (OTLP/HTTP) and browser page-load beacons in, Safeguard events out."""
