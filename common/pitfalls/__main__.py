"""`python -m common.pitfalls --out DIR [--steps N] [--quick]`: run the lab, write DIR/report.md."""

import sys

from common.pitfalls.cli import main

sys.exit(main())
