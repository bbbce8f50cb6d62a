"""TensorFlow's start-up lines kept off the terminal, unless asked for (--verbose, or DCGAN_VERBOSE=1).

TensorFlow writes them from C++ before its logging is set up, so TF_CPP_MIN_LOG_LEVEL does not reach
them: "oneDNN custom operations are on" (twice), "Could not find cuda drivers" and, on a CPU-only
machine, "failed call to cuInit: ... (303)", an error line for a normal machine. The commands import
TensorFlow and probe for a GPU once, with the process's stderr (file descriptor 2) pointed at
/dev/null; a Python exception still shows (it is raised after stderr is back), and config.json records
the device. TensorFlow's Python deprecation notices ("Instructions for updating: Use standard file APIs
to delete files with this prefix", printed when the saver rotates checkpoints) are off too.

Standard library only: it runs before anything imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

VERBOSE_FLAG = "--verbose"
VERBOSE_ENV = "DCGAN_VERBOSE"


def verbose(argv: Sequence[str] | None = None) -> bool:
    """Whether the command was asked for TensorFlow's own lines (--verbose, or DCGAN_VERBOSE=1)."""
    argv = sys.argv[1:] if argv is None else argv
    return VERBOSE_FLAG in argv or os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 (what C++ writes to) on /dev/null for the block, restored after it."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def start_quietly(argv: Sequence[str] | None = None) -> None:
    """Import TensorFlow and probe for a GPU once, silently unless verbose(argv); then keep TensorFlow's
    Python-side notices to errors. Call it first thing in a command, before TensorFlow is imported."""
    if "tensorflow" in sys.modules:  # too late to silence the import (a test, an interactive session)
        return
    if verbose(argv):
        return
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # where CUDA writes its cuInit error, once per process
    tf.get_logger().setLevel("ERROR")
