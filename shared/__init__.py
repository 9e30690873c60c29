"""Code shared by every Safeguard service: the event contract, Kafka, settings, telemetry."""
