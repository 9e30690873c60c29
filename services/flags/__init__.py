"""Safeguard flags service."""
