"""Safeguard notifier service."""
