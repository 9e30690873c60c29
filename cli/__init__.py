"""`safeguard`: the operator's command line (status, flags, recovery) over the front door."""

__all__: list[str] = []
