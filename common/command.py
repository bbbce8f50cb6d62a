"""What every command line of the project shares: one-line usage errors and the exit codes.

A user error (bad flag, bad data, an unusable run directory) prints one line and exits 2; Ctrl-C exits
130 and SIGTERM 143 (128 + the signal's number, what a shell reports for a process the signal ended).
The dataset modules' CLI (common.cli), common.evaluate, common.compare, the pitfalls lab and the
benchmarks all import this, and it imports none of them.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

from common.config import ConfigError
from common.data import DataError
from common.rundir import RunDirError


class UsageError(ValueError):
    """Bad command-line input."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (and exit 2), without the usage block; every
    command and subcommand takes --verbose (common.quiet: TensorFlow's start-up lines)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--verbose",
            action="store_true",
            help="show TensorFlow's own start-up lines and notices (also: DCGAN_VERBOSE=1)",
        )

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that every `except KeyboardInterrupt` that saves
    work (the training loop's checkpoint) does the same for a scheduler's, Docker's or `timeout`'s stop."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises Terminated in the main thread (after the running TensorFlow op
    returns, as Ctrl-C does); the previous handler is restored afterwards."""

    def handler(signum: int, frame: object) -> None:
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


USER_ERRORS = (DataError, ConfigError, RunDirError, UsageError)


def exit_code(prog: str, command: Callable[[], int]) -> int:
    """Run a command's body: a user error prints one line and gives 2, Ctrl-C gives 130, SIGTERM 143."""
    try:
        return command()
    except USER_ERRORS as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        if not getattr(err, "reported", False):  # the training loop says itself what it saved
            print(
                f"{prog}: {'terminated' if isinstance(err, Terminated) else 'interrupted'}", file=sys.stderr
            )
        return 143 if isinstance(err, Terminated) else 130
