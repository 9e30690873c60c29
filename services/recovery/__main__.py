"""`python -m services.recovery`: run the service. `python -m services.recovery recover ...`: the
runbook's Step 3, a one-shot call to the running service's `POST /api/recovery/run`."""

import sys

from services.recovery.cli import main

sys.exit(main(sys.argv[1:]))
