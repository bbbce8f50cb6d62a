"""The lab's command line: `python -m common.pitfalls --out DIR [--steps N] [--quick] [--only SECTION]`."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import tensorflow as tf
from tqdm import tqdm

from common.command import USER_ERRORS, OneLineParser
from common.config import ConfigError
from common.data import load_mnist
from common.modules import module_for_dataset
from common.pitfalls.harness import LabSize, Runs, lab_size, train_variants
from common.pitfalls.report import PITFALLS, fixed_steps, number, pitfall_name, select, variants, write_report
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
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="SECTION",
        help="run only these sections (numbers or module names, e.g. 6 or in_place_updates) and the runs "
        "they need; the report then holds those sections",
    )
    parser.add_argument(
        "--seeds", type=int, default=3, help="seeds of each comparison of two training paths (default 3)"
    )
    return parser


def run_pitfalls(runs: Runs, progress: bool, pitfalls: Sequence[ModuleType] = PITFALLS) -> dict[str, Any]:
    """Each pitfall's measurement, in report order, by pitfall name."""
    return {
        pitfall_name(pitfall): pitfall.measure(runs)
        for pitfall in tqdm(pitfalls, desc="measuring", disable=not progress)
    }


# Seconds per training step of batch 32 on 2 idle cores (float32, reading the moving statistics too), per
# section for its probes and evaluator passes (n = 2000), and once for starting: TensorFlow, the data, the
# cached classifier, the evaluator's reference features. Fitted to a 2-core Intel Xeon with AMX: the full
# run (4188 steps, 21 sections) took 1357 s, `--only 5` (1162 steps) 320 s, `--only 12` (996) 318 s.
SECONDS_PER_STEP_32 = 0.23
SECONDS_PER_SECTION = 20.0
SECONDS_TO_START = 40.0


def training_steps(size: LabSize, pitfalls: Sequence[ModuleType], seeds: int) -> int:
    """Training steps these sections need: the fixed run, their variants, and the runs over seeds."""
    steps = fixed_steps(size, pitfalls) + sum(getattr(size, variant.steps) for variant in variants(pitfalls))
    seeded: dict[int, set[str]] = {}
    for pitfall in pitfalls:
        for name in getattr(pitfall, "SEEDED", ()):
            seeded.setdefault(getattr(size, pitfall.SEEDED_STEPS), set()).add(name)
    return steps + (seeds - 1) * sum(length * len({"fixed", *names}) for length, names in seeded.items())


def estimate_seconds(size: LabSize, pitfalls: Sequence[ModuleType], seeds: int) -> float:
    """Seconds a run of these sections takes on 2 idle cores, the classifier cached."""
    per_step = SECONDS_PER_STEP_32 * max(size.batch_size, 8) / 32
    evaluations = len(pitfalls) * SECONDS_PER_SECTION * size.eval_samples / 2000
    return SECONDS_TO_START + training_steps(size, pitfalls, seeds) * per_step + evaluations


def estimate(size: LabSize, pitfalls: Sequence[ModuleType], seeds: int) -> str:
    """What a run of these sections costs, said before it starts."""
    steps = training_steps(size, pitfalls, seeds)
    seconds = estimate_seconds(size, pitfalls, seeds)
    load = os.getloadavg()[0]
    return (
        f"{len(pitfalls)} section(s), {steps} training steps of batch {size.batch_size}: about "
        f"{seconds:.0f} s ({seconds / 60:.1f} min) on 2 idle cores (load average now {load:.1f}: a "
        "loaded machine takes longer), plus the classifier's first training if none is cached"
    )


def classifier_said(seconds: float) -> str:
    """How the evaluator's classifier came, for the report's time: from the cache or trained first."""
    if seconds < 60:
        return f"; the classifier came from the cache ({seconds:.0f} s; its first training not included)"
    return f"; the time includes the evaluator's classifier's first training ({seconds / 60:.1f} min)"


def public_arguments(argv: Sequence[str]) -> list[str]:
    """The arguments with folders by name only: the report names no path of the machine it ran on."""
    shown, folder_next = [], False
    for argument in argv:
        if folder_next:
            shown.append(Path(argument).name if Path(argument).is_absolute() else argument)
        elif argument.startswith(("--data-dir=", "--out=")):
            flag, value = argument.split("=", 1)
            argument = f"{flag}={Path(value).name if Path(value).is_absolute() else value}"
            shown.append(argument)
        else:
            shown.append(argument)
        folder_next = argument in ("--data-dir", "--out")
    return shown


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if args.seed < 0:
            raise ConfigError(f"--seed must be a non-negative integer, got {args.seed}")
        size = lab_size(args.steps, args.quick)
        pitfalls = select(args.only)
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
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
    print(f"{PROG}: {estimate(size, pitfalls, args.seeds)}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    runs = train_variants(
        notebook,
        size,
        train.images,
        test.images,
        variants(pitfalls),
        args.seed,
        progress,
        args.data_dir,
        fixed_steps(size, pitfalls),
        args.seeds,
    )
    try:
        results = run_pitfalls(runs, progress, pitfalls)
    finally:
        runs.close()
    load_after = os.getloadavg()
    about = {
        "command": " ".join([PROG, *public_arguments(argv if argv is not None else sys.argv[1:])]),
        "seconds": time.perf_counter() - started,
        "device": device_description(),
        "tensorflow": tf.__version__,
        "data_source": "the folder given by --data-dir"
        if args.data_dir
        else "the default search ($DCGAN_DATA_DIR, the Keras cache)",
        "fixed_steps": runs.traces["fixed"].losses.shape[0],
        "seeds": args.seeds,
        "classifier": classifier_said(runs.evaluator.classifier_seconds),
        "sections": [number(pitfall) for pitfall in pitfalls],
        "size": size,
        "quality": runs.evaluator,
        # The machine may be shared: the load says how far the wall time is from an idle machine's.
        "load": f"load average {load_before[0]:.1f} at the start and {load_after[0]:.1f} at the end",
    }
    report = write_report(out, results, about, pitfalls)
    print(f"wrote {report} and {len(list(out.glob('*.png')))} figures in {about['seconds']:.0f} s")
    return 0
