"""Benchmarks (`make bench`). Each module `bench/<area>.py` has `async def main() -> None` printing its figures."""
