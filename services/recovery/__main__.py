"""`python -m services.recovery`: run the service (a bad setting or policy file exits 2 naming the field).
`python -m services.recovery recover ...`: the runbook's Step 3, a one-shot call to the running service's
`POST /api/recovery/run` (`services.recovery.cli`, which does not load the service's modules)."""

import sys


def run() -> None:
    from services.recovery.app import create_app
    from services.recovery.settings import RecoverySettings
    from shared.http import run_service

    run_service(create_app, RecoverySettings)


if sys.argv[1:]:
    from services.recovery.cli import main

    sys.exit(main(sys.argv[1:]))
run()
