"""Safeguard SLA stream processor (faust-streaming)."""
