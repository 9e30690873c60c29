"""The deploy half of the runbook: the protected app's migrations, their lint, and backups."""
