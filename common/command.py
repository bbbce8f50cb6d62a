"""What every command line of the project shares: one-line usage errors and the exit codes.

A user error (bad flag, bad data, an unusable run directory) prints one line and exits 2; Ctrl-C exits
130. The dataset modules' CLI (common.cli), common.evaluate, common.compare, the pitfalls lab and the
benchmarks all import this, and it imports none of them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from common.config import ConfigError
from common.data import DataError
from common.rundir import RunDirError


class UsageError(ValueError):
    """Bad command-line input."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (and exit 2), without the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


USER_ERRORS = (DataError, ConfigError, RunDirError, UsageError)


def exit_code(prog: str, command: Callable[[], int]) -> int:
    """Run a command's body: a user error prints one line and gives 2, Ctrl-C gives 130."""
    try:
        return command()
    except USER_ERRORS as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
