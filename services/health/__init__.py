"""Safeguard health service."""
