"""Time to quality: training wall time until the project's evaluator first reports FID at or below a target.

    python -m benchmarks.time_to_quality [--target FID] [--eval-every N] [--eval-samples N]
                                         [--max-steps N] [--seed S] [--only NAME] [--data-dir DIR]

MLPerf-style, on MNIST with the notebook DCGAN. Each contender trains from scratch; every `--eval-every`
steps, with its clock stopped, its generator is evaluated as `--eval-every` evaluates a run (the
project's classifier features, FID of `--eval-samples` generated images from the same noise each time
against as many real MNIST test images); its result is the training time until the first evaluation at
or below `--target`. Per-step speed is not the question here: on a CPU without bf16 the notebook's
G-then-D step does ~43% more matrix work than the Keras tutorial's simultaneous step, and what a user
wants is a trained model sooner.

Contenders train interleaved, `--eval-every` steps each in turn, so other work on a shared machine slows
all of them alike. Every generator is sampled the same way: its weights go into the project's
sampler-only Generator (common.sampling, recalibrated batch-norm statistics; the Keras models' weights
through benchmarks.alternatives.keras_generator_weights), so only how they trained differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from tqdm import tqdm

from benchmarks.alternatives import (
    KERAS_MIXED_POLICY,
    KerasStep,
    ProjectStep,
    Unavailable,
    keras_generator_weights,
)
from benchmarks.machine import this_machine
from benchmarks.speed import load_images
from common.architecture import ArchSpec
from common.classifier import load_classifier
from common.command import OneLineParser, Terminated, sigterm_as_interrupt
from common.config import Config, ConfigError
from common.data import DataError
from common.machine import load_average
from common.metrics import quality
from common.run_evaluation import image_features, real_images
from common.sampling import Generator, generator_variables
from common.speed import SpeedSettings, bf16_supported
from common.streams import EVAL_STREAM, sample_noise
from common.train import gpu_visible, with_precision


class QualityStep(Protocol):
    """A training step that can hand over its generator's weights (by the project's variable names)."""

    def step(self) -> object: ...

    def generator_weights(self) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


class ProjectQualityStep(ProjectStep):
    def generator_weights(self) -> dict[str, np.ndarray]:
        return self.sess.run(generator_variables(self.graph))


class KerasQualityStep(KerasStep):
    def generator_weights(self) -> dict[str, np.ndarray]:
        return keras_generator_weights(self.generator)


TERMINATED = "terminated (SIGTERM)"  # a Trace's `interrupted` after SIGTERM (exit 143; Ctrl-C: 130)


@dataclasses.dataclass(frozen=True)
class Contender:
    name: str
    build: Callable[[ArchSpec, Config, np.ndarray], QualityStep]
    project: bool


def contenders(bf16_available: bool) -> list[Contender]:
    """The project's default step, its graph with the Keras schedule, and the Keras tutorial's step (as
    written, with XLA, and where the CPU has bf16 with its mixed_bfloat16 policy)."""

    def simultaneous(spec: ArchSpec, config: Config, images: np.ndarray) -> QualityStep:
        return ProjectQualityStep(dataclasses.replace(spec, schedule="simultaneous"), config, images)

    chosen = [
        Contender("project (default train)", ProjectQualityStep, True),
        Contender("project graph, simultaneous schedule", simultaneous, True),
        Contender(
            "TF2 Keras tutorial step", lambda s, c, i: KerasQualityStep(s, c, i, jit_compile=False), False
        ),
        Contender(  # the fastest peer per step where TensorFlow runs without oneDNN (docs/benchmarks.md)
            "  same, jit_compile (XLA)", lambda s, c, i: KerasQualityStep(s, c, i, jit_compile=True), False
        ),
    ]
    if bf16_available:
        chosen.append(
            Contender(
                "  same, mixed_bfloat16 policy",
                lambda s, c, i: KerasQualityStep(s, c, i, jit_compile=False, policy=KERAS_MIXED_POLICY),
                False,
            )
        )
    return chosen


@dataclasses.dataclass
class Trace:
    name: str
    project: bool
    steps: list[int] = dataclasses.field(default_factory=list)
    fids: list[float] = dataclasses.field(default_factory=list)
    train_seconds: list[float] = dataclasses.field(default_factory=list)  # cumulative, evaluation excluded
    images_per_second: list[float] = dataclasses.field(default_factory=list)  # one per chunk
    reached: int | None = None  # index of the first evaluation at or below the target
    error: str | None = None
    interrupted: str | None = None  # how the race was stopped early (Ctrl-C, SIGTERM), if it was

    @property
    def seconds_to_target(self) -> float | None:
        return None if self.reached is None else self.train_seconds[self.reached]


class Evaluator:
    """The evaluator's numbers for a generator's weights: the same noise and real images every time."""

    def __init__(self, spec: ArchSpec, config: Config, n: int, data_dir: str | None, seed: int) -> None:
        test = real_images("mnist", "test", data_dir, None).images
        if n > len(test):
            raise ConfigError(f"--eval-samples {n} is more than the {len(test)} MNIST test images")
        rng = np.random.default_rng([seed, 5])  # common.evaluate's reference draw
        reference = test if n == len(test) else test[np.sort(rng.choice(len(test), n, replace=False))]
        self.classifier = load_classifier("mnist", data_dir, progress=False)
        self.reference = image_features(self.classifier, reference)
        self.noise = sample_noise(config, n, seed, EVAL_STREAM)
        self.generator = Generator(spec, config)  # the run's sampler: recalibrated statistics
        self.seed = seed

    def fid(self, weights: dict[str, np.ndarray]) -> float:
        self.generator.load(weights)
        features = image_features(self.classifier, self.generator.images(self.noise))
        return float(quality(features, self.reference, None, self.seed)["fid"])

    def close(self) -> None:
        self.generator.close()
        self.classifier.close()


def race(
    chosen: Sequence[Contender],
    spec: ArchSpec,
    config: Config,
    images: np.ndarray,
    evaluator: Evaluator,
    target: float,
    eval_every: int,
    max_steps: int,
    progress: bool = True,
) -> list[Trace]:
    """Train every contender `eval_every` steps at a time, in turn, until each reaches the target.

    Every evaluation is printed as it happens (a long race interrupted, or crashed, keeps its curves in
    the log); Ctrl-C or SIGTERM ends the race early and returns the traces so far, marked `interrupted`.
    """
    traces, running = [], []
    for contender in chosen:
        trace = Trace(contender.name, contender.project)
        traces.append(trace)
        try:
            running.append((trace, contender.build(spec, config, images)))
        except Unavailable as err:
            trace.error = str(err)
    bar = tqdm(total=len(running) * max_steps, unit="step", disable=not progress, dynamic_ncols=True)
    try:
        for chunk in range(math.ceil(max_steps / eval_every)):
            steps = min(eval_every, max_steps - chunk * eval_every)
            for trace, step in running:
                if trace.reached is not None:
                    continue
                tick = time.perf_counter()
                for _ in range(steps):
                    step.step()
                seconds = time.perf_counter() - tick
                trace.images_per_second.append(steps * config.batch_size / seconds)
                trace.train_seconds.append(
                    (trace.train_seconds[-1] if trace.train_seconds else 0.0) + seconds
                )
                trace.steps.append(chunk * eval_every + steps)
                trace.fids.append(evaluator.fid(step.generator_weights()))  # not timed
                if trace.fids[-1] <= target:
                    trace.reached = len(trace.fids) - 1
                bar.write(
                    f"{trace.name.strip()}: step {trace.steps[-1]}, FID {trace.fids[-1]:.2f}, "
                    f"{trace.train_seconds[-1]:.0f} s of training",
                    file=sys.stdout,
                )
                sys.stdout.flush()
                bar.update(steps)
            if all(trace.reached is not None for trace, _ in running):
                break
    except KeyboardInterrupt as err:  # the table of what ran is still wanted
        for trace in traces:
            trace.interrupted = TERMINATED if isinstance(err, Terminated) else "interrupted"
    finally:
        bar.close()
        for _, step in running:
            step.close()
    return traces


def format_table(traces: Sequence[Trace], target: float) -> str:
    default = next((t for t in traces if t.project and t.seconds_to_target is not None), None)
    lines = [
        f"| contender | first FID <= {target:g} at step | training time to it | time vs project default "
        "| img/s (median) | FID at each evaluation (step: FID) |",
        "|---|---|---|---|---|---|",
    ]
    for t in traces:
        if t.error:
            lines.append(f"| {t.name} | not run: {t.error} | | | | |")
            continue
        curve = ", ".join(f"{s}: {f:.2f}" for s, f in zip(t.steps, t.fids, strict=True))
        speed = f"{np.median(t.images_per_second):.0f}" if t.images_per_second else "-"
        if t.reached is None:
            last = t.steps[-1] if t.steps else 0
            stopped = f" ({t.interrupted})" if t.interrupted else ""
            trained = t.train_seconds[-1] if t.train_seconds else 0.0
            lines.append(
                f"| {t.name} | not reached in {last} steps{stopped} | > {trained:.0f} s | | "
                f"{speed} | {curve} |"
            )
            continue
        seconds = t.seconds_to_target
        ratio = f"{seconds / default.seconds_to_target:.2f}x as long" if default and seconds else "-"
        ratio = "1.00x" if t is default else ratio
        lines.append(f"| {t.name} | {t.steps[t.reached]} | {seconds:.0f} s | {ratio} | {speed} | {curve} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m benchmarks.time_to_quality", description=__doc__.split("\n\n")[0])
    # Defaults: what both the project and the Keras step reach within 600 steps (docs/benchmarks.md).
    parser.add_argument("--target", type=float, default=150.0, help="FID to reach (at --eval-samples images)")
    parser.add_argument("--eval-every", type=int, default=50, help="steps between evaluations")
    parser.add_argument("--eval-samples", type=int, default=1000, help="images per evaluation (FID's n)")
    parser.add_argument("--max-steps", type=int, default=600, help="give up on a contender after this")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="where MNIST is (default: the usual search)")
    parser.add_argument("--only", action="append", default=[], help="run only contenders named so")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("eval_every", "max_steps", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.eval_samples < 2:
        parser.error("--eval-samples must be at least 2")
    from dcgan_mnist.model import SPEC as NOTEBOOK  # benchmarks may import a dataset module; common may not

    try:
        images, source = load_images("mnist", args.data_dir)
        if source.startswith("synthetic"):
            raise DataError(f"time to quality needs the real MNIST: {source}")
        config = Config(batch_size=args.batch_size, seed=args.seed, data_dir=args.data_dir).validate()
        settings = SpeedSettings.default_settings(with_precision(config).precision)
        evaluator = Evaluator(NOTEBOOK, config, args.eval_samples, args.data_dir, args.seed)
    except (ConfigError, DataError) as err:
        print(f"benchmarks.time_to_quality: error: {err}", file=sys.stderr)
        return 2
    chosen = [
        c
        for c in contenders(bf16_supported() and not gpu_visible())
        if not args.only or any(s.lower() in c.name.lower() for s in args.only)
    ]
    load_before = load_average()
    try:
        with sigterm_as_interrupt():
            traces = race(
                chosen,
                NOTEBOOK,
                config,
                images,
                evaluator,
                args.target,
                args.eval_every,
                args.max_steps,
                progress=not args.no_progress,
            )
    finally:
        evaluator.close()
    print(this_machine().describe())
    print(f"load average (1, 5, 15 min): {load_before} before, {load_average()} after")
    print(
        f"data: {source}; batch {args.batch_size}; seed {args.seed}; project (default train): "
        f"{settings.describe()}"
    )
    print(
        f"FID of {args.eval_samples} samples vs {args.eval_samples} MNIST test images every "
        f"{args.eval_every} steps (evaluation time excluded), target {args.target:g}, at most "
        f"{args.max_steps} steps; contenders interleaved\n"
    )
    print(format_table(traces, args.target))
    stopped = next((t.interrupted for t in traces if t.interrupted), None)
    if stopped:
        print(f"\n{stopped}: the race stopped early; the table holds the evaluations made until then")
        return 143 if stopped == TERMINATED else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
