"""The command line of the lab: `python -m common.pitfalls --out DIR [--steps N] [--quick]`."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.cli import USER_ERRORS, OneLineParser
from common.config import ConfigError
from common.pitfalls import experiments as ex
from common.pitfalls.lab import ProbeSession, build_probe
from common.rundir import check_writable_dir

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


def run_pitfalls(runs: ex.Runs, progress: bool) -> dict[str, Any]:
    """Every measurement that reads the trained runs, in report order (pitfall 6 runs on its own)."""
    probe = build_probe(runs.spec, runs.config)
    measured: dict[str, Any] = {}
    steps = [
        ("no_update_deps", ex.pitfall_no_update_deps),
        ("one_update_collection", ex.pitfall_one_update_collection),
        ("training_true_at_inference", ex.pitfall_training_true_at_inference),
        ("training_false_in_training", ex.pitfall_training_false_in_training),
        ("unwarmed_moving_averages", ex.pitfall_unwarmed_moving_averages),
        ("separate_vs_concat", ex.pitfall_separate_vs_concat),
        ("dropout_at_inference", ex.pitfall_dropout_at_inference),
        ("trainable_only_saver", ex.pitfall_trainable_only_saver),
    ]
    with ProbeSession(probe) as session:
        for key, measure in tqdm(steps, desc="measuring", disable=not progress):
            measured[key] = measure(runs, session)
    measured["captured_before_layers"] = ex.pitfall_captured_before_layers(runs)
    return measured


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if args.seed < 0:
            raise ConfigError(f"--seed must be a non-negative integer, got {args.seed}")
        size = ex.lab_size(args.steps, args.quick)
        out = Path(args.out)
        check_writable_dir(out)
        from common.data import load_mnist

        train = load_mnist("mnist", "train", args.data_dir)
        test = load_mnist("mnist", "test", args.data_dir)
    except USER_ERRORS as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2

    import tensorflow as tf

    from common.pitfalls.report import write_report
    from common.train import device_description
    from dcgan_mnist.model import NOTEBOOK

    progress = not args.no_progress
    out.mkdir(parents=True, exist_ok=True)
    runs = ex.train_variants(NOTEBOOK, size, train.images, test.images, args.seed, progress)
    results = run_pitfalls(runs, progress)
    results["sampler_rebuilt"] = ex.pitfall_sampler_rebuilt(NOTEBOOK, size, train.images, args.seed, progress)
    about = {
        "command": " ".join([PROG, *(argv if argv is not None else sys.argv[1:])]),
        "seconds": time.perf_counter() - started,
        "device": device_description(),
        "tensorflow": tf.__version__,
        "data_source": args.data_dir or "the default search ($DCGAN_DATA_DIR, the Keras cache)",
        "size": size,
    }
    report = write_report(out, results, about)
    print(f"wrote {report} and {len(list(out.glob('*.png')))} figures in {about['seconds']:.0f} s")
    return 0
