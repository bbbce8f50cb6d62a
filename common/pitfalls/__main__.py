"""`python -m common.pitfalls --out DIR [--steps N] [--quick]`: run the lab, write DIR/report.md."""

from common.quiet import start_quietly

start_quietly()  # before anything imports TensorFlow: its start-up lines only with --verbose
import sys

from common.pitfalls.cli import main

sys.exit(main())
