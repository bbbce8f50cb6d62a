"""Where a training step's time goes: the project's step, traced op by op, accounted to its wall time.

    python -m benchmarks.profile [--dataset mnist|cifar] [--precision auto|float32|bfloat16]
                                 [--filter-grad auto|matmul|native] [--impl FIELD=on|off ...]
                                 [--steps N] [--top N] [--data-dir DIR]

Runs the step `common.train` runs (benchmarks.alternatives.ProjectStep): 3 untimed steps, 10 timed
(the untraced wall time), then `--steps` more with `RunOptions.FULL_TRACE`. Each traced step is a
timeline of the kernels that ran (after grappler's rewrites: oneDNN's `_MklNative*` ops, the bf16
casts). Two ops can run at once on two cores, so op times add up to more than the step: here every
moment of the step is shared equally among the ops running then, and a moment when none runs is
"between ops" (the executor's dispatch and scheduling). The tables therefore sum to the traced step's
wall time; the session call around the ops (feeds, fetches, Python) is its own row. Tracing slows a
step down, so the traced total is printed beside the untraced time: read the shares, not the ms.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import sys
import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import tensorflow as tf

from benchmarks.alternatives import ProjectStep
from benchmarks.speed import DATASETS, architecture, load_images
from common.command import OneLineParser
from common.config import PRECISIONS, Config, ConfigError
from common.data import DataError
from common.layers import LayerImpl
from common.train import with_precision

v1 = tf.compat.v1
FILTER_GRADS = {"auto": None, "matmul": True, "native": False}
BETWEEN_OPS = "between ops (executor: dispatch, scheduling)"
SESSION_CALL = "session call around the ops (feeds, fetches, Python)"


class OpRun(NamedTuple):
    name: str  # the node name after grappler's rewrites
    op_type: str  # the kernel that ran (e.g. _MklNativeConv2DBackpropInput, Cast)
    start: int  # microseconds
    duration: int


def category(run: OpRun) -> str:
    """What an op does for the step, from the kernel that ran and the scope it was built in."""
    op_type, name = run.op_type, run.name
    # Casts first: the bf16 rewrite names a cast after the op whose output it converts.
    if op_type in ("Cast", "_MklToTf", "Transpose"):
        return "casts and layout (bf16 <-> float32, reorders)"
    if op_type in ("ResourceApplyAdam", "AssignAddVariableOp") or "_train/" in name:
        return "optimizer (Adam updates, step count)"
    if "/dropout" in name:
        return "dropout (random bits, masks)"
    if "/lrelu" in name or op_type in ("LeakyRelu", "LeakyReluGrad", "Tanh", "TanhGrad"):
        return "activations (leaky ReLU, tanh)"
    if "/batch_norm" in name:
        return "batch norm (and its moving-average updates)"
    if "IdentityN_grad/" in name and op_type in ("StridedSlice", "ConcatV2", "Pad", "Reshape"):
        return "kernel-gradient patches (pad, slices, concat)"
    if "Conv2D" in op_type or "MatMul" in op_type:
        return "matrix work (convolutions, matrix products)"
    if op_type in ("BiasAdd", "BiasAddGrad"):
        return "biases"
    if "loss" in name:
        return "losses"
    if name.startswith("inputs/"):
        return "data batch and noise"
    if op_type == "AddN":
        return "gradient sums (AddN)"
    return "other ops"


def layer(run: OpRun) -> str:
    """The layer an op belongs to: `generator/conv_transpose2`, gradients and both D calls included."""
    path = re.sub(r"^gradients(_\d+)?/", "", run.name)
    path = re.sub(r"^[^/]*_train/update_", "", path)  # Adam's update of a layer's variable
    parts = path.split("/")
    if parts and parts[0] in ("step", "second_step"):  # the towers of G's and D's steps
        parts = parts[1:]
    if len(parts) < 2 or not re.match(r"^(generator|discriminator)(_\d+)?$", parts[0]):
        return parts[0] if parts and parts[0] in ("inputs",) else "outside the networks"
    network = re.sub(r"_\d+$", "", parts[0])  # discriminator_1: D's second call, the same layers
    # All dropouts (and all activations) of a network are one row: they are not numbered by layer.
    part = re.sub(r"_\d+$", "", parts[1]) if parts[1].startswith(("dropout", "lrelu")) else parts[1]
    return f"{network}/{part}"


def op_runs(step_stats) -> list[OpRun]:  # noqa: ANN001 (a StepStats proto)
    runs = []
    for device in step_stats.dev_stats:
        for node in device.node_stats:
            # timeline_label is "name = OpType(inputs)": the kernel that ran, after grappler's rewrites.
            label = node.timeline_label
            op_type = label.split(" = ")[1].split("(")[0] if " = " in label else "?"
            runs.append(OpRun(node.node_name, op_type, node.all_start_micros, node.all_end_rel_micros))
    return runs


def wall_shares(runs: Sequence[OpRun]) -> tuple[list[float], float, float]:
    """Each op's share of the step's wall time, the time no op ran, and the timeline's span (µs).

    A sweep over start and end times: each interval's length is split equally among the ops running in
    it, so the shares and the idle time add up to the span exactly.
    """
    events = []
    for index, run in enumerate(runs):
        if run.duration > 0:
            events += [(run.start, 1, index), (run.start + run.duration, 0, index)]
    events.sort()
    share = [0.0] * len(runs)
    running: set[int] = set()
    idle = 0.0
    last = events[0][0] if events else 0
    for moment, starts, index in events:
        if moment > last:
            if running:
                for other in running:
                    share[other] += (moment - last) / len(running)
            else:
                idle += moment - last
            last = moment
        (running.add if starts else running.discard)(index)
    span = (events[-1][0] - events[0][0]) if events else 0.0
    return share, idle, span


class Account(NamedTuple):
    by_category: collections.Counter  # ms of wall time per step
    by_layer: collections.Counter
    by_type: collections.Counter
    ops: int  # ops run per step
    op_time: float  # ms of op time per step, all threads


def account(traces: Iterable, wall_per_trace: Sequence[float]) -> Account:
    """Average the traced steps into wall-time tables (ms per step) that sum to the traced step's time."""
    by_category: collections.Counter = collections.Counter()
    by_layer: collections.Counter = collections.Counter()
    by_type: collections.Counter = collections.Counter()
    ops = 0
    op_time = 0.0
    traces = list(traces)
    for step_stats, wall in zip(traces, wall_per_trace, strict=True):
        runs = op_runs(step_stats)
        share, idle, span = wall_shares(runs)
        for run, part in zip(runs, share, strict=True):
            by_category[category(run)] += part / 1000
            by_layer[layer(run)] += part / 1000
            by_type[run.op_type] += part / 1000
            op_time += run.duration / 1000
        for table in (by_category, by_layer, by_type):
            table[BETWEEN_OPS] += idle / 1000
            table[SESSION_CALL] += max(0.0, 1000 * wall - span / 1000)
        ops += len(runs)
    count = len(traces)
    scale = lambda table: collections.Counter({k: v / count for k, v in table.items()})  # noqa: E731
    return Account(scale(by_category), scale(by_layer), scale(by_type), ops // count, op_time / count)


def traced_steps(step: ProjectStep, steps: int) -> tuple[list, list[float]]:
    options = v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE)
    step.sess.run(step.gan.train.step, options=options, run_metadata=v1.RunMetadata())  # sets tracing up
    traces, walls = [], []
    for _ in range(steps):
        metadata = v1.RunMetadata()
        tick = time.perf_counter()
        step.sess.run(step.gan.train.step, options=options, run_metadata=metadata)
        walls.append(time.perf_counter() - tick)
        traces.append(metadata.step_stats)
    return traces, walls


def print_table(title: str, table: collections.Counter, top: int) -> None:
    total = sum(table.values())
    print(f"| {title} | ms per step | share |\n|---|---|---|")
    rows = table.most_common()
    for name, ms in rows[:top]:
        print(f"| {name} | {ms:.1f} | {100 * ms / total:.1f}% |")
    if len(rows) > top:
        rest = sum(ms for _, ms in rows[top:])
        print(f"| {len(rows) - top} more | {rest:.1f} | {100 * rest / total:.1f}% |")
    print(f"| **total (the traced step)** | **{total:.1f}** | 100% |\n")


IMPL_FIELDS = tuple(field.name for field in dataclasses.fields(LayerImpl))


def impl_choices(pairs: Sequence[str]) -> dict[str, bool]:
    """`--impl mask_dropout=on ...` as LayerImpl keyword arguments (ConfigError for a bad one)."""
    choices = {}
    for pair in pairs:
        field, _, value = pair.partition("=")
        if field not in IMPL_FIELDS or value not in ("on", "off"):
            raise ConfigError(
                f"--impl takes FIELD=on|off with FIELD one of {', '.join(IMPL_FIELDS)}, not {pair!r}"
            )
        choices[field] = value == "on"
    return choices


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--filter-grad", choices=sorted(FILTER_GRADS), default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--steps", type=int, default=5, help="traced steps (after 3 untimed, 10 timed and 1 traced untimed)"
    )
    parser.add_argument("--top", type=int, default=20, help="rows of the layer and op-type tables")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--impl",
        action="append",
        default=[],
        metavar="FIELD=on|off",
        help=f"a common.layers.LayerImpl choice, e.g. mask_dropout=on (fields: {', '.join(IMPL_FIELDS)})",
    )
    args = parser.parse_args(argv)
    if args.steps < 1 or args.top < 1 or args.batch_size < 1:
        parser.error("--steps, --top and --batch-size must be at least 1")
    try:
        images, source = load_images(args.dataset, args.data_dir)
        config = Config(dataset=args.dataset, batch_size=args.batch_size, precision=args.precision).validate()
        layer_impl = LayerImpl(matmul_filter_grad=FILTER_GRADS[args.filter_grad], **impl_choices(args.impl))
        step = ProjectStep(architecture(args.dataset), config, images, layer_impl=layer_impl)
        step_impl = layer_impl.for_precision(with_precision(config).precision)
    except (ConfigError, DataError) as err:
        print(f"benchmarks.profile: error: {err}", file=sys.stderr)
        return 2
    try:
        for _ in range(3):
            step.step()
        tick = time.perf_counter()
        for _ in range(10):
            step.step()
        wall = (time.perf_counter() - tick) / 10
        result = account(*traced_steps(step, args.steps))
    finally:
        step.close()
    precision = with_precision(config).precision
    traced = sum(result.by_category.values())
    busy = traced - result.by_category[BETWEEN_OPS] - result.by_category[SESSION_CALL]
    print(f"data: {source}; batch {args.batch_size}; {precision}; filter gradients: {args.filter_grad}")
    print(f"layers: {step_impl}")
    print(f"untraced: {1000 * wall:.1f} ms per step, {args.batch_size / wall:.1f} images/s")
    print(
        f"traced ({args.steps} steps): {traced:.1f} ms per step, {result.ops} ops, "
        f"{result.op_time:.1f} ms of op time (on average {result.op_time / busy:.2f} ops at a time)\n"
    )
    print_table("where the step's wall time goes", result.by_category, len(result.by_category))
    print_table("layer", result.by_layer, args.top)
    print_table("op type (kernel)", result.by_type, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
