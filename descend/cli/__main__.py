"""`python -m descend.cli`: the `descend` command without its console script."""

import sys

from descend.cli import main

sys.exit(main())
