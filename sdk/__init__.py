"""What a protected app imports from Safeguard."""
