"""The demo protected app: a FastAPI shop with a `gamification` feature behind a flag."""
