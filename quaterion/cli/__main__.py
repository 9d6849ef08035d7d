"""`python -m quaterion.cli`: the same as the `quaterion` console script."""

import sys

from quaterion.cli import main

sys.exit(main())
