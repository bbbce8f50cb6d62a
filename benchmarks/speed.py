"""Images per second of training: the project's step against the alternatives, timed side by side.

    python -m benchmarks.speed [--dataset mnist|cifar] [--steps N] [--rounds R] [--batch-size N]

Each implementation is built and warmed up, then timed `steps` steps at a time, interleaved
(A B C A B C ...) for `rounds` rounds, so a busy machine slows all of them alike; the table shows the
median over rounds and the ratio to the fastest alternative, the peers' own fast switches (Keras
mixed_bfloat16, PyTorch bf16 autocast) included. The CPU (model, flags, any oneDNN ISA cap) and the
load average before and after are printed with it. Not part of the test run (see
tests/test_benchmarks.py for the smoke test).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from benchmarks.alternatives import (
    Implementation,
    TrainingStep,
    Unavailable,
    flops_per_image,
    implementations,
)
from benchmarks.machine import Machine, this_machine
from common.architecture import ArchSpec
from common.command import OneLineParser
from common.config import Config, ConfigError
from common.data import DataError, ImageSet
from common.machine import load_average
from common.speed import SpeedSettings, bf16_supported
from common.train import gpu_visible, with_precision

DATASETS = ("mnist", "cifar")


@dataclasses.dataclass
class Timing:
    name: str
    project: bool
    flops_per_image: int
    images_per_second: list[float] = dataclasses.field(default_factory=list)
    cpu_seconds_per_step: list[float] = dataclasses.field(default_factory=list)  # all threads' CPU time
    error: str | None = None  # why it did not run

    @property
    def median(self) -> float:
        return float(np.median(self.images_per_second)) if self.images_per_second else float("nan")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One thing to time: how to build it, and what it counts as."""

    name: str
    build: Callable[[], TrainingStep]
    flops_per_image: int
    project: bool


def time_interleaved(
    candidates: Sequence[Candidate],
    batch_size: int,
    steps: int,
    rounds: int,
    warmup: int,
    progress: bool = True,
) -> list[Timing]:
    """Build and warm up every candidate, then time `steps` steps of each in turn, `rounds` times."""
    timings, built = [], []
    for candidate in candidates:
        timing = Timing(candidate.name, candidate.project, candidate.flops_per_image)
        timings.append(timing)
        try:
            implementation = candidate.build()
        except Unavailable as err:
            timing.error = str(err)
            continue
        for _ in range(warmup):  # graph optimization, tf.function tracing, oneDNN primitive caches
            implementation.step()
        built.append((timing, implementation))
    bar = tqdm(total=rounds * len(built) * steps, unit="step", disable=not progress, dynamic_ncols=True)
    try:
        for _ in range(rounds):
            for timing, implementation in built:
                tick, cpu_tick = time.perf_counter(), time.process_time()
                for _ in range(steps):
                    implementation.step()
                timing.images_per_second.append(steps * batch_size / (time.perf_counter() - tick))
                timing.cpu_seconds_per_step.append((time.process_time() - cpu_tick) / steps)
                bar.update(steps)
    finally:
        bar.close()
        for _, implementation in built:
            implementation.close()
    return timings


def format_table(timings: Sequence[Timing], machine: Machine) -> str:
    """A markdown table: median img/s, spread, ratio to the fastest alternative, GFLOP/s and % of peak.

    The last column is the median CPU time (all threads) per step: on a machine shared with other work
    it moves less than wall time, so it is a second opinion on a ratio.
    """
    alternatives = [t.median for t in timings if not t.project and t.images_per_second]
    fastest = max(alternatives) if alternatives else None
    peak = machine.peak_float32_gflops
    lines = [
        "| implementation | img/s (median) | min-max | vs fastest alternative | GFLOP/s | % of fp32 peak "
        "| CPU s/step |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in timings:
        if t.error:
            lines.append(f"| {t.name} | not run: {t.error} | | | | | |")
            continue
        gflops = t.median * t.flops_per_image / 1e9
        ratio = f"{t.median / fastest:.2f}x" if fastest else "-"
        share = f"{100 * gflops / peak:.0f}%" if peak else "-"
        spread = f"{min(t.images_per_second):.0f}-{max(t.images_per_second):.0f}"
        cpu = float(np.median(t.cpu_seconds_per_step))
        lines.append(
            f"| {t.name} | {t.median:.1f} | {spread} | {ratio} | {gflops:.0f} | {share} | {cpu:.3f} |"
        )
    return "\n".join(lines)


def load_images(dataset: str, data_dir: str | None) -> tuple[np.ndarray, str]:
    """The real training images when they can be found (no download); else synthetic ones, said so.

    Speed does not depend on pixel values, so random uint8 images of the right shape time the same.
    """
    from common.data import load_cifar10, load_mnist

    try:
        found: ImageSet = (
            load_mnist("mnist", "train", data_dir, download=False)
            if dataset == "mnist"
            else load_cifar10("train", data_dir, download=False)
        )
        return found.images, found.source
    except DataError as err:
        shape = (60000, 28, 28, 1) if dataset == "mnist" else (5000, 32, 32, 3)
        images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        return images, f"synthetic uint8 images {shape} ({err})"


def architecture(dataset: str) -> ArchSpec:
    if dataset == "mnist":
        from dcgan_mnist.model import SPEC as NOTEBOOK
    else:  # loaded lazily: dcgan_cifar is optional for the MNIST benchmark
        from dcgan_cifar.model import SPEC as NOTEBOOK
    return NOTEBOOK


def candidates_for(
    chosen: Sequence[Implementation], spec: ArchSpec, config: Config, images: np.ndarray
) -> list[Candidate]:
    def builder(implementation: Implementation) -> Callable[[], TrainingStep]:
        return lambda: implementation.build(spec, config, images)

    return [
        Candidate(i.name, builder(i), flops_per_image(spec, config, i.schedule), i.project) for i in chosen
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--steps", type=int, default=10, help="steps per implementation per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after building")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", default=None, help="where the data set is (default: the usual search)")
    parser.add_argument("--only", action="append", default=[], help="time only names containing this")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("steps", "rounds", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    try:
        spec = architecture(args.dataset)
        images, source = load_images(args.dataset, args.data_dir)
        config = Config(dataset=args.dataset, batch_size=args.batch_size).validate()
        settings = SpeedSettings.default_settings(with_precision(config).precision)
        if args.batch_size > len(images):
            raise ConfigError(f"--batch-size {args.batch_size} is larger than the data set ({len(images)})")
    except (ConfigError, DataError) as err:
        print(f"benchmarks.speed: error: {err}", file=sys.stderr)
        return 2
    chosen = [
        i
        for i in implementations(settings.precision, bf16_supported() and not gpu_visible())
        if not args.only or any(s.lower() in i.name.lower() for s in args.only)
    ]
    machine = this_machine()
    load_before = load_average()
    timings = time_interleaved(
        candidates_for(chosen, spec, config, images),
        args.batch_size,
        args.steps,
        args.rounds,
        args.warmup,
        progress=not args.no_progress,
    )
    print(machine.describe())
    print(f"load average (1, 5, 15 min): {load_before} before, {load_average()} after")
    print(f"data: {source}; batch {args.batch_size}; project (default train): {settings.describe()}")
    print(f"{args.rounds} rounds x {args.steps} steps each, interleaved; medians over rounds")
    print("vs fastest alternative: each row against the fastest row that is not the project's\n")
    print(format_table(timings, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
