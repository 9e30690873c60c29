"""Safeguard flag client: local evaluation, live updates, OpenFeature provider."""
