"""python -m autopilot: the product's command line (validate, plan, protect, ensure-policies, ...)."""

import sys

from autopilot.cli import main

sys.exit(main())
