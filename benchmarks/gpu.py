"""The GPU benchmark: the project's step and the Keras tutorial's, float32 and mixed precision, by batch size.

    python -m benchmarks.gpu [--dataset mnist|cifar] [--batch-sizes 64 256 1024] [--steps N] [--rounds R]

Rows, each timed interleaved with the others of its batch size (benchmarks.speed.time_interleaved):
- project, float32: the graph `train` builds on a GPU (`--precision auto` is float32 there);
- project, float16: the same graph with grappler's `auto_mixed_precision` rewrite (float16 matrix work on
  the GPU, variables float32) and TF1's dynamic loss scaling around each Adam (common.step.adam_train_op);
- Keras tutorial step, float32, and with Keras's own switch: `mixed_float16` (with Keras's
  LossScaleOptimizer; D's output layer float32, as Keras's mixed-precision guide has it) and
  `mixed_bfloat16` where the GPU has bf16 (compute capability 8.0 and later).
GPU utilization comes from `nvidia-smi` sampled in the background while each row runs (where it is
installed). Before timing, the placement check of tests/test_gan.py runs on the project's graph: every op
has a GPU kernel or is CPU-only on purpose (common.step.CPU_ONLY_SCOPES).

Without a GPU it says so and runs the same rows on the CPU (float16 rows then time the float32 graph:
grappler's rewrite skips a machine with no GPU), which is what tests/test_benchmarks.py smoke-tests.
These are never GPU figures.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import kernels

from benchmarks.alternatives import KerasStep, ProjectStep, TrainingStep, Unavailable, flops_per_image
from benchmarks.machine import this_machine
from benchmarks.speed import (
    DATASETS,
    Candidate,
    Timing,
    architecture,
    format_table,
    load_images,
    time_interleaved,
)
from common.architecture import ArchSpec
from common.command import OneLineParser
from common.config import Config, ConfigError
from common.data import DataError
from common.machine import load_average
from common.step import CPU_ONLY_SCOPES
from common.train import gpu_visible

v1 = tf.compat.v1
GPU_KERNEL_DEVICES = ("GPU", "DEFAULT")  # DEFAULT: registered for every device type


# ------------------------------------------------------------------------------------ placement check
def gpu_kernel_registered(op: tf.Operation) -> bool:
    """Whether a GPU kernel is registered for this op's type and its type attributes (T, dtype, ...)."""
    for kernel in kernels.get_registered_kernels_for_op(op.type).kernel:
        if kernel.device_type not in GPU_KERNEL_DEVICES:
            continue
        fits = True
        for constraint in kernel.constraint:
            allowed = constraint.allowed_values.list.type
            if not allowed or constraint.name not in op.node_def.attr:
                continue
            value = op.get_attr(constraint.name)
            types = value if isinstance(value, list) else [value]
            fits = fits and all(t.as_datatype_enum in allowed for t in types)
        if fits:
            return True
    return False


def placed_device(op: tf.Operation) -> str:
    """The device an op asked for: its own, else that of the op it is colocated with (initializers and
    variable reads follow their variable); empty where neither says (the placer is free to choose)."""
    if op.device:
        return op.device
    for group in op.colocation_groups():
        name = group.decode()[len("loc:@") :]
        if name != op.name:
            return op.graph.get_operation_by_name(name).device
    return ""


def placement_problems(graph: tf.Graph) -> list[str]:
    """Ops of a graph built under /GPU:0 that a GPU could not run with soft placement off.

    An op placed on the GPU must have a GPU kernel for its types; an op pinned to the CPU must be in
    CPU_ONLY_SCOPES (there on purpose). Ops with no device at all are the placer's free choice (a CPU
    kernel does, then). Empty: the graph places.
    """
    problems = []
    for op in graph.get_operations():
        device = placed_device(op).upper()
        if "CPU" in device and not op.name.startswith(CPU_ONLY_SCOPES):
            problems.append(f"{op.name} ({op.type}) is pinned to the CPU, not listed as CPU-only")
        elif "GPU" in device and not gpu_kernel_registered(op):
            problems.append(f"{op.name} ({op.type}) has no GPU kernel for its types")
    return problems


# ---------------------------------------------------------------------------------------------- rows
def gpu_has_bf16() -> bool:
    """Compute capability 8.0 or later (Ampere): bf16 tensor cores."""
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and capability >= (8, 0):
            return True
    return False


def keras_mixed(policy: str) -> Callable[[ArchSpec, Config, np.ndarray], KerasStep]:
    def build(spec: ArchSpec, config: Config, images: np.ndarray) -> KerasStep:
        if not gpu_visible():
            raise Unavailable(f"no GPU: {policy} is a GPU row here")
        if policy == "mixed_bfloat16" and not gpu_has_bf16():
            raise Unavailable("this GPU has no bf16 (compute capability below 8.0)")
        return KerasStep(spec, config, images, jit_compile=False, policy=policy)

    return build


def rows(spec: ArchSpec, config: Config, images: np.ndarray) -> list[Candidate]:
    project_flops = flops_per_image(spec, config, "g_then_d")
    keras_flops = flops_per_image(spec, config, "simultaneous")
    return [
        Candidate(
            "project, float32",
            lambda: ProjectStep(spec, config.replace(precision="float32"), images),
            project_flops,
            True,
        ),
        Candidate(
            "project, float16 (auto_mixed_precision + loss scaling)",
            lambda: ProjectStep(spec, config.replace(precision="float32"), images, float16=True),
            project_flops,
            True,
        ),
        Candidate(
            "Keras tutorial step, float32",
            lambda: KerasStep(spec, config, images, jit_compile=False),
            keras_flops,
            False,
        ),
        Candidate(
            "  same, mixed_float16",
            lambda: keras_mixed("mixed_float16")(spec, config, images),
            keras_flops,
            False,
        ),
        Candidate(
            "  same, mixed_bfloat16",
            lambda: keras_mixed("mixed_bfloat16")(spec, config, images),
            keras_flops,
            False,
        ),
    ]


# --------------------------------------------------------------------------------------- utilization
class Utilization:
    """`nvidia-smi`'s GPU utilization (%), sampled every 200 ms while it is open, credited to the row
    whose step ran last (rows run interleaved, so each row's samples come from its own turns)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self.active: str | None = None
        self.tool = shutil.which("nvidia-smi")
        self.process: subprocess.Popen | None = None
        self.reader: threading.Thread | None = None

    def __enter__(self) -> Utilization:
        if self.tool is None:
            return self
        self.process = subprocess.Popen(
            [self.tool, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if self.active is not None:
                with contextlib.suppress(ValueError):
                    self.samples.setdefault(self.active, []).append(float(line.split(",")[0]))

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=5)
        if self.reader is not None:
            self.reader.join(timeout=5)

    def watch(self, candidate: Candidate) -> Candidate:
        """The same row, marking itself active while it steps."""
        monitor = self

        class Watched:
            def __init__(self, inner: TrainingStep) -> None:
                self.inner = inner

            def step(self) -> None:
                monitor.active = candidate.name
                self.inner.step()

            def close(self) -> None:
                self.inner.close()

        return dataclasses.replace(candidate, build=lambda: Watched(candidate.build()))

    def describe(self, name: str) -> str:
        values = self.samples.get(name)
        if self.tool is None:
            return "not measured (no nvidia-smi)"
        return f"{np.median(values):.0f}% (median of {len(values)} samples)" if values else "no samples"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--steps", type=int, default=20, help="steps per row per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps after building")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.batch_sizes) < 1 or args.steps < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("batch sizes, --steps and --rounds must be at least 1, --warmup 0 or more")
    spec = architecture(args.dataset)
    try:
        images, source = load_images(args.dataset, args.data_dir)
        configs = [Config(dataset=args.dataset, batch_size=b).validate() for b in args.batch_sizes]
    except (ConfigError, DataError) as err:
        print(f"benchmarks.gpu: error: {err}", file=sys.stderr)
        return 2
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
        print(f"GPU: {', '.join(names)}; nvidia-smi: {shutil.which('nvidia-smi') or 'not installed'}")
    else:
        print(
            "No GPU is present (tf.config.list_physical_devices('GPU') is empty): the rows run on the CPU, "
            "float16 rows time the float32 graph, and none of these are GPU figures."
        )
    print(this_machine().describe())
    from benchmarks.alternatives import loss_scaled_adam
    from common.step import build_training_graph

    with loss_scaled_adam("dynamic"):
        graph, _ = build_training_graph(spec, configs[0], len(images), device="/GPU:0")
    problems = placement_problems(graph)
    print(
        f"placement check (graph built under /GPU:0, float16 variant): {len(graph.get_operations())} ops, "
        + (
            "every op has a GPU kernel or is CPU-only on purpose"
            if not problems
            else f"{len(problems)} problems:"
        )
    )
    for problem in problems:
        print(f"  {problem}")
    print(f"data: {source}; {args.rounds} rounds x {args.steps} steps each, interleaved per batch size\n")
    for config in configs:
        if config.batch_size > len(images):
            print(f"batch {config.batch_size}: skipped, larger than the data set ({len(images)} images)\n")
            continue
        load_before = load_average()
        with Utilization() as utilization:
            timings: list[Timing] = time_interleaved(
                [utilization.watch(c) for c in rows(spec, config, images)],
                config.batch_size,
                args.steps,
                args.rounds,
                args.warmup,
                progress=not args.no_progress,
            )
        print(f"batch {config.batch_size}; load average {load_before} before, {load_average()} after")
        print(format_table(timings, this_machine()))
        for timing in timings:
            if not timing.error:
                print(f"  GPU utilization, {timing.name.strip()}: {utilization.describe(timing.name)}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
