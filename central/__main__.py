"""`python -m central`: same as the `central-server` console script."""

import sys

from central.cli import main

sys.exit(main())
