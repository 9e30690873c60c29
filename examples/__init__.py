"""Example protected apps that use the Safeguard SDK."""
