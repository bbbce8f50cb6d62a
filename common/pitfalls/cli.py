"""The command line of the lab: `python -m common.pitfalls --out DIR [--steps N] [--quick]`."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tensorflow as tf
from tqdm import tqdm

from common.command import USER_ERRORS, OneLineParser
from common.config import ConfigError
from common.data import load_mnist
from common.modules import module_for_dataset
from common.pitfalls.harness import Runs, lab_size, train_variants
from common.pitfalls.report import PITFALLS, pitfall_name, variants, write_report
from common.rundir import check_writable_dir
from common.train import device_description

PROG = "python -m common.pitfalls"


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog=PROG, description="Graph-mode batch-norm pitfalls, reproduced and measured.")
    parser.add_argument("--out", required=True, help="folder for report.md and the figures")
    parser.add_argument("--steps", type=int, help="steps of the main runs (default 500; --quick: 12)")
    parser.add_argument("--quick", action="store_true", help="everything tiny: a smoke run, as the tests use")
    parser.add_argument("--data-dir", help="where MNIST is (else $DCGAN_DATA_DIR, the Keras cache, download)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, data order and noise (0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def run_pitfalls(runs: Runs, progress: bool) -> dict[str, Any]:
    """Every pitfall's measurement, in report order, by pitfall name."""
    return {
        pitfall_name(pitfall): pitfall.measure(runs)
        for pitfall in tqdm(PITFALLS, desc="measuring", disable=not progress)
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if args.seed < 0:
            raise ConfigError(f"--seed must be a non-negative integer, got {args.seed}")
        size = lab_size(args.steps, args.quick)
        out = Path(args.out)
        check_writable_dir(out)
        # common/ never imports a dataset package: the notebook's DCGAN comes from the registered module.
        notebook = module_for_dataset("mnist").architectures["notebook"]
        train = load_mnist("mnist", "train", args.data_dir)
        test = load_mnist("mnist", "test", args.data_dir)
    except USER_ERRORS as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2

    progress = not args.no_progress
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    runs = train_variants(
        notebook, size, train.images, test.images, variants(), args.seed, progress, args.data_dir
    )
    try:
        results = run_pitfalls(runs, progress)
    finally:
        runs.close()
    load_after = os.getloadavg()
    about = {
        "command": " ".join([PROG, *(argv if argv is not None else sys.argv[1:])]),
        "seconds": time.perf_counter() - started,
        "device": device_description(),
        "tensorflow": tf.__version__,
        "data_source": args.data_dir or "the default search ($DCGAN_DATA_DIR, the Keras cache)",
        "size": size,
        "quality": runs.evaluator,
        # The machine may be shared: the load says how far the wall time is from an idle machine's.
        "load": f"load average {load_before[0]:.1f} at the start and {load_after[0]:.1f} at the end",
    }
    report = write_report(out, results, about)
    print(f"wrote {report} and {len(list(out.glob('*.png')))} figures in {about['seconds']:.0f} s")
    return 0
