"""Safeguard recovery service."""
