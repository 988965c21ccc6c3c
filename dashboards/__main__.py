"""`python -m modelmon.dashboards`: write (or, with --check, verify) dashboards/modelmon.json."""

import sys

from modelmon.dashboards.build import main

sys.exit(main())
